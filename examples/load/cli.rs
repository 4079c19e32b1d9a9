//! The command line of the load driver and its validation into a `Plan`.
//! Everything a run needs is checked here, before any request is sent; nothing here does I/O.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use reqwest::header::HeaderValue;
use reqwest::Url;

use crate::target;

/// The largest concurrency accepted: far beyond what two cores can use, small enough
/// that a typo cannot open thousands of sockets.
const MAX_CONCURRENCY: u32 = 1024;

/// Load driver for a running latchkey server on this machine (loopback only).
#[derive(Parser)]
#[command(
    name = "load",
    after_help = "Counting: `requests` is every finished request; req/s and the latency \
        percentiles cover the successful ones; setup (sign-ups, first logins, probes) is not timed.\n\n\
        Examples:\n  \
        cargo run --release --example load -- refresh --public-client-id ID --concurrency 16 --duration-secs 30\n  \
        cargo run --release --example load -- refresh --public-client-id ID --sweep 1,4,16,64 --label sqlite --csv load.csv\n  \
        cargo run --release --example load -- jwks --requests 50000"
)]
pub struct Args {
    /// The scenario to run (or give it with --scenario).
    #[arg(value_enum, value_name = "SCENARIO")]
    command: Option<Scenario>,

    /// The scenario to run, as an option.
    #[arg(
        long,
        value_enum,
        conflicts_with = "command",
        hide_possible_values = true
    )]
    scenario: Option<Scenario>,

    /// Base URL of the server; must be http on a loopback address or `localhost`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,

    /// Number of concurrent workers (for refresh: concurrent refresh chains).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONCURRENCY)))]
    concurrency: u32,

    /// Run the refresh scenario once per concurrency in this list, e.g. 1,4,16,64.
    #[arg(long, value_delimiter = ',', conflicts_with = "concurrency",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONCURRENCY)))]
    sweep: Vec<u32>,

    /// Stop after this many requests in total (per run; each sweep step is a run).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    requests: u64,

    /// Stop after this many seconds (per run), whichever bound comes first.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_secs: u64,

    /// Per-request timeout in seconds; a request slower than this counts as an error.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    timeout_secs: u64,

    /// Public client id sent as `client_id` by the password and refresh scenarios.
    #[arg(long)]
    public_client_id: Option<String>,

    /// Confidential client id (client-credentials and introspect scenarios).
    #[arg(long)]
    client_id: Option<String>,

    /// Confidential client secret; prefer the environment variable, which `ps` does not show.
    #[arg(long, env = "LATCHKEY_LOAD_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,

    /// Scope requested by the password, refresh (at login) and client-credentials grants.
    #[arg(long)]
    scope: Option<String>,

    /// Users signed up before the password scenario starts [default: the concurrency].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    users: Option<u32>,

    /// Server process to watch: VmRSS and VmHWM from /proc/PID/status every 100 ms.
    #[arg(long)]
    server_pid: Option<u32>,

    /// Append one result row per run to this CSV file (header written when the file is new).
    #[arg(long)]
    csv: Option<PathBuf>,

    /// Backend label for the CSV row and the chart, e.g. sqlite or postgres.
    #[arg(long, default_value = "unlabelled", value_parser = Label::parse)]
    label: Label,

    /// Tokio worker threads of the driver; the server shares the same cores.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    threads: u32,
}

/// What kind of request a run sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Concurrent refresh chains, each always presenting its newest refresh token.
    Refresh,
    /// Password-grant logins over a pool of users signed up first.
    Password,
    /// client_credentials grants with client_secret_basic.
    ClientCredentials,
    /// RFC 7662 introspection of one client-credentials access token.
    Introspect,
    /// GET /.well-known/jwks.json.
    Jwks,
}

impl Scenario {
    /// The name used on the command line and in the CSV file.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Refresh => "refresh",
            Scenario::Password => "password",
            Scenario::ClientCredentials => "client-credentials",
            Scenario::Introspect => "introspect",
            Scenario::Jwks => "jwks",
        }
    }
}

/// A backend label: 1 to 32 characters of `[A-Za-z0-9._-]`, so a CSV row never needs quoting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    /// Parses a label, refusing characters that would need CSV quoting.
    ///
    /// # Errors
    /// When the label is empty, longer than 32 characters or has another character.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if raw.is_empty() || raw.len() > 32 || !raw.chars().all(allowed) {
            return Err("a label is 1 to 32 characters of A-Z a-z 0-9 . _ -".to_owned());
        }
        Ok(Label(raw.to_owned()))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How the driver identifies itself to the token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// A public client: `client_id` as a form parameter.
    Public(String),
    /// A confidential client: a ready `Authorization: Basic` header value (marked sensitive).
    Basic(HeaderValue),
    /// No client (the JWKS scenario).
    None,
}

/// A validated run plan: every value here is in range and fits the scenario.
pub struct Plan {
    /// The scenario every run of this plan uses.
    pub scenario: Scenario,
    /// The loopback base URL, ending in `/`.
    pub base_url: Url,
    /// One run per entry: the sweep, or the single `--concurrency`.
    pub concurrencies: Vec<usize>,
    /// Total request bound of each run.
    pub max_requests: u64,
    /// Time bound of each run.
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The client the scenario authenticates as.
    pub client: ClientAuth,
    /// Scope for the grants that take one.
    pub scope: Option<String>,
    /// Pool size of the password scenario; `None` means the concurrency.
    pub users: Option<usize>,
    /// Server process whose memory is sampled.
    pub server_pid: Option<u32>,
    /// CSV file to append to.
    pub csv: Option<PathBuf>,
    /// Backend label for reports.
    pub label: Label,
    /// Driver runtime threads.
    pub threads: usize,
}

impl TryFrom<Args> for Plan {
    type Error = anyhow::Error;

    fn try_from(args: Args) -> anyhow::Result<Plan> {
        let scenario = pick_scenario(&args)?;
        let client = client_auth(scenario, &args)?;
        let base_url = target::parse_loopback_url(&args.url)?;
        let concurrencies = if args.sweep.is_empty() {
            vec![args.concurrency as usize]
        } else if args.sweep.len() > 16 {
            bail!("--sweep takes at most 16 concurrencies");
        } else {
            args.sweep.iter().map(|&c| c as usize).collect()
        };
        Ok(Plan {
            scenario,
            base_url,
            concurrencies,
            max_requests: args.requests,
            duration: Duration::from_secs(args.duration_secs),
            timeout: Duration::from_secs(args.timeout_secs),
            client,
            scope: args.scope,
            users: args.users.map(|u| u as usize),
            server_pid: args.server_pid,
            csv: args.csv,
            label: args.label,
            threads: args.threads as usize,
        })
    }
}

/// Resolves the positional scenario, `--scenario`, and the sweep (which implies refresh).
fn pick_scenario(args: &Args) -> anyhow::Result<Scenario> {
    let named = args.command.or(args.scenario);
    match (named, args.sweep.is_empty()) {
        (Some(scenario), true) => Ok(scenario),
        (None | Some(Scenario::Refresh), false) => Ok(Scenario::Refresh),
        (Some(other), false) => bail!("--sweep runs the refresh scenario, not {}", other.name()),
        (None, true) => {
            bail!("name a scenario: refresh, password, client-credentials, introspect or jwks")
        }
    }
}

/// Checks that the scenario got the client it needs and builds its authentication.
fn client_auth(scenario: Scenario, args: &Args) -> anyhow::Result<ClientAuth> {
    match scenario {
        Scenario::Refresh | Scenario::Password => match &args.public_client_id {
            Some(id) if !id.is_empty() => Ok(ClientAuth::Public(id.clone())),
            _ => bail!("the {} scenario needs --public-client-id", scenario.name()),
        },
        Scenario::ClientCredentials | Scenario::Introspect => {
            match (&args.client_id, &args.client_secret) {
                (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                    basic_auth_header(id, secret).map(ClientAuth::Basic)
                }
                _ => bail!(
                    "the {} scenario needs --client-id and --client-secret (or LATCHKEY_LOAD_CLIENT_SECRET)",
                    scenario.name()
                ),
            }
        }
        Scenario::Jwks => Ok(ClientAuth::None),
    }
}

/// Builds the `client_secret_basic` header once, so the hot loop only clones it.
///
/// RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and
/// base64-encoded; reqwest's `basic_auth` skips that step, so it is done here.
fn basic_auth_header(id: &str, secret: &str) -> anyhow::Result<HeaderValue> {
    use base64::Engine as _;
    let pair = format!("{}:{}", form_urlencode(id), form_urlencode(secret));
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .context("building the Authorization header")?;
    // Keeps the secret out of any Debug output of the request.
    value.set_sensitive(true);
    Ok(value)
}

/// `application/x-www-form-urlencoded` encoding of one value (space as `%20`, which decoders accept).
fn form_urlencode(raw: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const FORM: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'*')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    utf8_percent_encode(raw, FORM).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> anyhow::Result<Plan> {
        let args = Args::try_parse_from(std::iter::once("load").chain(argv.iter().copied()))?;
        Plan::try_from(args)
    }

    #[test]
    fn positional_and_flag_scenarios_are_the_same() {
        let a = parse(&["jwks"]).map(|p| p.scenario).ok();
        let b = parse(&["--scenario", "jwks"]).map(|p| p.scenario).ok();
        assert_eq!(a, Some(Scenario::Jwks));
        assert_eq!(a, b);
    }

    #[test]
    fn sweep_implies_refresh_and_lists_concurrencies() {
        let plan = parse(&["--sweep", "1,4,16,64", "--public-client-id", "c"]);
        let plan = plan.map_err(|e| e.to_string());
        assert!(matches!(&plan, Ok(p) if p.scenario == Scenario::Refresh));
        assert_eq!(plan.map(|p| p.concurrencies).ok(), Some(vec![1, 4, 16, 64]));
    }

    #[test]
    fn sweep_with_another_scenario_is_refused() {
        assert!(parse(&["jwks", "--sweep", "1,2"]).is_err());
    }

    #[test]
    fn refresh_without_public_client_is_refused() {
        assert!(parse(&["refresh"]).is_err());
    }

    #[test]
    fn non_loopback_url_is_refused() {
        assert!(parse(&["jwks", "--url", "http://10.0.0.1:8080"]).is_err());
    }

    #[test]
    fn zero_concurrency_is_refused() {
        assert!(parse(&["jwks", "--concurrency", "0"]).is_err());
    }

    #[test]
    fn label_refuses_csv_special_characters() {
        assert!(Label::parse("sqlite").is_ok());
        assert!(Label::parse("pg-16.2_a").is_ok());
        assert!(Label::parse("a,b").is_err());
        assert!(Label::parse("").is_err());
        assert!(Label::parse("\"x\"").is_err());
    }

    #[test]
    fn basic_auth_form_encodes_before_base64() {
        use base64::Engine as _;
        let header = basic_auth_header("id 1", "s:e/c").map(|h| h.to_str().map(str::to_owned));
        let expected = base64::engine::general_purpose::STANDARD.encode("id%201:s%3Ae%2Fc");
        assert_eq!(
            header.ok().and_then(Result::ok),
            Some(format!("Basic {expected}"))
        );
    }
}
