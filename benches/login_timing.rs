//! Equal-cost login failures: an unknown user, a wrong password and a
//! disabled user must take the same time, or response times tell an attacker
//! which email addresses have accounts.
//!
//! Starts the real server (production argon2id parameters, SQLite in a temp
//! folder, throttling raised out of the way) and sends 100 password-grant
//! attempts of each kind, interleaved so that drift in machine load falls on
//! all three alike. Prints each kind's median and quartiles, and a
//! Mann-Whitney U test per pair: |z| < 1.96 means the two timing
//! distributions cannot be told apart at the 5% level.
//!
//! `cargo bench --bench login_timing` (add `-- 300` for more attempts).

use std::sync::Arc;
use std::time::Instant;

use latchkey::clock::SystemClock;
use latchkey::config::{RawSettings, Settings};
use latchkey::domain::clients::NewClient;
use latchkey::domain::types::{ClientKind, GrantType, Password, Scope};
use latchkey::startup::Application;

#[path = "common/stats.rs"]
mod stats;
use stats::{mann_whitney_z, quantile};

const PASSWORD: &str = "correct horse battery";

#[derive(Clone, Copy)]
enum Attempt {
    UnknownUser,
    WrongPassword,
    DisabledUser,
}

impl Attempt {
    const ALL: [Attempt; 3] = [
        Attempt::UnknownUser,
        Attempt::WrongPassword,
        Attempt::DisabledUser,
    ];

    fn name(self) -> &'static str {
        match self {
            Attempt::UnknownUser => "unknown user",
            Attempt::WrongPassword => "wrong password",
            Attempt::DisabledUser => "disabled user",
        }
    }

    fn credentials(self) -> (&'static str, &'static str) {
        match self {
            Attempt::UnknownUser => ("nobody@example.com", PASSWORD),
            Attempt::WrongPassword => ("active@example.com", "not the password"),
            Attempt::DisabledUser => ("disabled@example.com", PASSWORD),
        }
    }
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; a bare number sets the attempts per kind.
    let attempts = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(100)
        .max(10);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(attempts))
}

async fn run(attempts: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = RawSettings::defaults()?;
    settings.server.port = 0;
    settings.database.url = format!("sqlite://{}", dir.path().join("timing.db").display()).into();
    settings.keys.dir = dir.path().join("keys");
    settings.demo.enabled = false;
    // Every attempt must reach the password check; a 429 would be decided
    // before any hashing and say nothing about equal cost.
    settings.throttle.account_max_failures = 1_000_000;
    settings.throttle.address_max_failures = 1_000_000;

    let app = Application::build(Settings::validate(settings)?, Arc::new(SystemClock)).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let services = app.services().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());

    let client = services
        .create_client(NewClient {
            name: "timing".into(),
            kind: ClientKind::Public,
            grants: vec![GrantType::Password],
            scopes: Scope::parse("openid").ok_or_else(|| anyhow::anyhow!("scope"))?,
            audience: None,
            cookie_mode: false,
            origins: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            introspect: false,
            require_dpop: false,
            admin: false,
            key_source: None,
        })
        .await?;
    let client_id = client.client.id.to_string();
    services
        .create_user("active@example.com", Password(PASSWORD.into()), None)
        .await?;
    let disabled = services
        .create_user("disabled@example.com", Password(PASSWORD.into()), None)
        .await?;
    services
        .set_user_disabled(disabled.id, true, "login_timing bench")
        .await?;

    let http = reqwest::Client::new();
    let url = format!("{base}/oauth/token");
    let mut timings: [Vec<f64>; 3] = Default::default();
    // Warm-up: connections, caches and the allocator.
    for kind in Attempt::ALL {
        login(&http, &url, &client_id, kind).await?;
    }
    for round in 0..attempts {
        // Rotate the order each round so no kind always runs first.
        for k in 0..3 {
            let index = (round + k) % 3;
            let kind = Attempt::ALL[index];
            let started = Instant::now();
            login(&http, &url, &client_id, kind).await?;
            timings[index].push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    handle.stop(true).await;

    println!("login failures, {attempts} attempts each (ms):");
    for (kind, t) in Attempt::ALL.iter().zip(&timings) {
        let mut sorted = t.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "  {:<15} median {:>7.2}  p25 {:>7.2}  p75 {:>7.2}",
            kind.name(),
            quantile(&sorted, 0.5),
            quantile(&sorted, 0.25),
            quantile(&sorted, 0.75),
        );
    }
    println!("Mann-Whitney U, |z| < 1.96: indistinguishable at the 5% level");
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let z = mann_whitney_z(&timings[a], &timings[b]);
        println!(
            "  {:<15} vs {:<15} z = {:>6.2}  {}",
            Attempt::ALL[a].name(),
            Attempt::ALL[b].name(),
            z,
            if z.abs() < 1.96 {
                "indistinguishable"
            } else {
                "DIFFERENT"
            }
        );
    }
    Ok(())
}

/// One failed login; anything but `400 invalid_grant` aborts the bench,
/// since then the timing would measure something else.
async fn login(
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
    kind: Attempt,
) -> anyhow::Result<()> {
    let (username, password) = kind.credentials();
    let res = http
        .post(url)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("client_id", client_id),
        ])
        .send()
        .await?;
    let status = res.status();
    let body = res.text().await?;
    anyhow::ensure!(
        status == 400 && body.contains("invalid_grant"),
        "{}: expected 400 invalid_grant, got {status}: {body}",
        kind.name()
    );
    Ok(())
}
