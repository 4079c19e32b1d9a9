//! Draws the load driver's CSV (`load --sweep ... --csv FILE`) as an SVG: throughput and
//! p99 latency against concurrency, one line per backend label. It reads only the CSV,
//! by column name, and neither talks to a server nor links the latchkey library.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use plotters::prelude::*;

/// Draw throughput and p99 latency against concurrency from a load CSV.
#[derive(Parser)]
#[command(
    name = "chart",
    after_help = "Example:\n  cargo run --example chart -- --csv load.csv --out load.svg"
)]
struct Args {
    /// CSV file appended to by `load --csv`.
    #[arg(long, default_value = "load.csv")]
    csv: PathBuf,

    /// SVG file to write.
    #[arg(long, default_value = "load.svg")]
    out: PathBuf,

    /// Which scenario's rows to draw.
    #[arg(long, default_value = "refresh")]
    scenario: String,
}

/// One measured point of one backend.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    rps: f64,
    p99_ms: f64,
}

/// Points by backend label, then by concurrency. A later row for the same label and
/// concurrency replaces an earlier one, so a re-run sweep draws its newest numbers.
type Series = BTreeMap<String, BTreeMap<u32, Point>>;

/// Width and height of the SVG, in pixels.
const SIZE: (u32, u32) = (900, 900);

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chart: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads, parses and draws.
fn run(args: &Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.csv)
        .with_context(|| format!("reading {}", args.csv.display()))?;
    let series = parse_csv(&text, &args.scenario)
        .with_context(|| format!("parsing {}", args.csv.display()))?;
    if series.is_empty() {
        bail!("{} has no {} rows", args.csv.display(), args.scenario);
    }
    draw(&series, &args.scenario, &args.out)
        .with_context(|| format!("drawing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Column positions, found by name in the header so that new columns do not break us.
struct Columns {
    scenario: usize,
    label: usize,
    concurrency: usize,
    rps: usize,
    p99_ms: usize,
}

impl Columns {
    /// Locates the needed columns in a header line.
    fn find(header: &str) -> anyhow::Result<Self> {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let at = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| anyhow!("the header has no {name} column"))
        };
        Ok(Columns {
            scenario: at("scenario")?,
            label: at("label")?,
            concurrency: at("concurrency")?,
            rps: at("rps")?,
            p99_ms: at("p99_ms")?,
        })
    }
}

/// Parses the CSV (the driver never quotes: labels are restricted) into series of one scenario.
fn parse_csv(text: &str, scenario: &str) -> anyhow::Result<Series> {
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, line)| line)
        .context("the file is empty")?;
    let columns = Columns::find(header)?;
    let mut series = Series::new();
    for (index, line) in lines {
        // A header repeated by concatenated files, or a blank line, is not data.
        if line.trim().is_empty() || line == header {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        if field(columns.scenario) != scenario {
            continue;
        }
        let row = || -> anyhow::Result<(u32, Point)> {
            let concurrency = field(columns.concurrency).parse().context("concurrency")?;
            let rps = field(columns.rps).parse().context("rps")?;
            let p99_ms = field(columns.p99_ms).parse().context("p99_ms")?;
            Ok((concurrency, Point { rps, p99_ms }))
        };
        let (concurrency, point) = row().with_context(|| format!("line {}", index + 1))?;
        let label = field(columns.label);
        series
            .entry(label.to_owned())
            .or_default()
            .insert(concurrency, point);
    }
    Ok(series)
}

/// Draws the two panels, throughput above and p99 below, into one SVG file.
fn draw(series: &Series, scenario: &str, out: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(out, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let title = |what: &str| format!("{scenario}: {what} by concurrency");
    draw_panel(
        &top,
        series,
        &title("throughput"),
        "successful requests/s",
        |p| p.rps,
    )?;
    draw_panel(
        &bottom,
        series,
        &title("p99 latency"),
        "p99 latency (ms)",
        |p| p.p99_ms,
    )?;
    root.present().map_err(plot_error)
}

/// One panel: a line per label over a log-2 concurrency axis ticked at the measured values.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    series: &Series,
    title: &str,
    y_desc: &str,
    value: fn(&Point) -> f64,
) -> anyhow::Result<()> {
    let ticks: Vec<f64> = concurrencies(series).into_iter().map(f64::from).collect();
    let (x_min, x_max) = (
        ticks.first().copied().unwrap_or(1.0),
        ticks.last().copied().unwrap_or(1.0),
    );
    let y_max = series
        .values()
        .flat_map(|s| s.values().map(value))
        .fold(0.0_f64, f64::max);
    let x_range = (x_min / 1.5..x_max * 1.5)
        .log_scale()
        .base(2.0)
        .with_key_points(ticks);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, 0.0..nice_max(y_max))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("concurrency")
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        // Whole numbers for throughput; one decimal where the axis is small, like p99 in ms.
        .y_label_formatter(&|y| format!("{:.*}", usize::from(y_max < 100.0), y))
        .draw()
        .map_err(plot_error)?;
    for (index, (label, points)) in series.iter().enumerate() {
        let color = color_for(label, index);
        let line = points.iter().map(|(&c, p)| (f64::from(c), value(p)));
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)).point_size(4))
            .map_err(plot_error)?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_error)
}

/// Every concurrency any label measured, ascending.
fn concurrencies(series: &Series) -> Vec<u32> {
    let mut all: Vec<u32> = series.values().flat_map(|s| s.keys().copied()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// A y-axis top a little above the highest value, never zero (an empty range cannot be drawn).
fn nice_max(highest: f64) -> f64 {
    if highest.is_finite() && highest > 0.0 {
        highest * 1.15
    } else {
        1.0
    }
}

/// The same colour for a backend in every chart: sqlite blue, postgres red, others in turn.
fn color_for(label: &str, index: usize) -> RGBColor {
    const OTHERS: [RGBColor; 4] = [GREEN, MAGENTA, CYAN, BLACK];
    match label {
        "sqlite" => BLUE,
        "postgres" => RED,
        _ => OTHERS[index % OTHERS.len()],
    }
}

/// Plotters' errors borrow nothing but are generic over the backend; flatten to text.
fn plot_error<E: std::fmt::Display>(err: E) -> anyhow::Error {
    anyhow!("{err}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\
scenario,label,concurrency,requests,seconds,rps,p50_ms,p90_ms,p99_ms,max_ms,errors,peak_rss_kib
refresh,sqlite,1,100,1.0,100.0,1,1,2.5,3,0,
refresh,sqlite,4,100,1.0,350.5,1,1,4.0,5,0,51200
jwks,sqlite,4,100,1.0,9000.0,1,1,1.0,1,0,
refresh,postgres,4,100,1.0,300.0,1,1,6.0,7,0,
refresh,sqlite,4,100,1.0,360.0,1,1,4.5,5,0,
";

    #[test]
    fn parses_one_scenario_grouped_by_label_newest_row_wins() {
        let series = parse_csv(CSV, "refresh").expect("the sample parses");
        assert_eq!(series.len(), 2);
        assert_eq!(
            series["sqlite"][&4],
            Point {
                rps: 360.0,
                p99_ms: 4.5
            }
        );
        assert_eq!(series["postgres"][&4].p99_ms, 6.0);
        assert_eq!(concurrencies(&series), vec![1, 4]);
    }

    #[test]
    fn a_bad_number_names_its_line() {
        let csv = CSV.replace("350.5", "fast");
        let err = parse_csv(&csv, "refresh").expect_err("a bad rps fails");
        assert!(format!("{err:#}").contains("line 3"), "{err:#}");
    }

    #[test]
    fn a_missing_column_is_an_error() {
        assert!(parse_csv("scenario,label\nrefresh,sqlite\n", "refresh").is_err());
    }

    #[test]
    fn draws_an_svg() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let out = dir.path().join("chart.svg");
        let series = parse_csv(CSV, "refresh").expect("the sample parses");
        draw(&series, "refresh", &out).expect("drawing succeeds");
        let svg = std::fs::read_to_string(&out).expect("the file was written");
        assert!(svg.contains("<svg") && svg.contains("postgres") && svg.contains("sqlite"));
    }
}
