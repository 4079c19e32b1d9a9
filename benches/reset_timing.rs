//! Equal-cost reset requests: `POST /v1/account/password/reset` must answer
//! an address with an account and one without in the same time, or response
//! times tell an attacker which addresses have accounts.
//!
//! Starts the real server (SQLite in a temp folder, the `log` transport,
//! request limits raised out of the way) and sends 200 requests of each kind,
//! interleaved so that drift in machine load falls on both alike. Prints each
//! kind's median and quartiles and a Mann-Whitney U test: |z| < 1.96 means
//! the two timing distributions cannot be told apart at the 5% level.
//!
//! `cargo bench --bench reset_timing` (add `-- 500` for more requests).

use std::sync::Arc;
use std::time::Instant;

use latchkey::clock::SystemClock;
use latchkey::config::{RawSettings, Settings};
use latchkey::domain::types::Password;
use latchkey::startup::Application;

#[path = "common/stats.rs"]
mod stats;
use stats::{mann_whitney_z, quantile};

const KINDS: [(&str, &str); 2] = [
    ("known address", "ada@example.com"),
    ("unknown address", "nobody@example.com"),
];

fn main() -> anyhow::Result<()> {
    let requests = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(200)
        .max(10);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(requests))
}

async fn run(requests: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = RawSettings::defaults()?;
    settings.server.port = 0;
    settings.database.url = format!("sqlite://{}", dir.path().join("timing.db").display()).into();
    settings.keys.dir = dir.path().join("keys");
    settings.demo.enabled = false;
    // Every request must reach the lookup; a 429 would say nothing.
    settings.email.max_requests_per_client = 1_000_000;
    settings.email.max_requests_per_email = 1_000_000;

    let app = Application::build(Settings::validate(settings)?, Arc::new(SystemClock)).await?;
    let url = format!("http://127.0.0.1:{}/v1/account/password/reset", app.port());
    let services = app.services().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    services
        .create_user(KINDS[0].1, Password("correct horse battery".into()), None)
        .await?;

    let http = reqwest::Client::new();
    let mut timings: [Vec<f64>; 2] = Default::default();
    for (_, email) in KINDS {
        request(&http, &url, email).await?;
    }
    for round in 0..requests {
        for k in 0..2 {
            let index = (round + k) % 2;
            let started = Instant::now();
            request(&http, &url, KINDS[index].1).await?;
            timings[index].push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    handle.stop(true).await;

    println!("reset requests, {requests} each (ms):");
    for ((name, _), t) in KINDS.iter().zip(&timings) {
        let mut sorted = t.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "  {name:<15} median {:>7.3}  p25 {:>7.3}  p75 {:>7.3}",
            quantile(&sorted, 0.5),
            quantile(&sorted, 0.25),
            quantile(&sorted, 0.75),
        );
    }
    let z = mann_whitney_z(&timings[0], &timings[1]);
    println!(
        "Mann-Whitney U: z = {z:.2}  {}",
        if z.abs() < 1.96 {
            "indistinguishable at the 5% level"
        } else {
            "DIFFERENT"
        }
    );
    Ok(())
}

/// One reset request; anything but the 202 aborts the bench.
async fn request(http: &reqwest::Client, url: &str, email: &str) -> anyhow::Result<()> {
    let res = http
        .post(url)
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await?;
    let status = res.status();
    anyhow::ensure!(status == 202, "{email}: expected 202, got {status}");
    Ok(())
}
