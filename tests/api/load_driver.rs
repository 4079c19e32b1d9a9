//! The load driver (`examples/load`) against a real server: every scenario
//! runs a few requests with no error, reads the server's memory from /proc,
//! and appends its CSV row. `cargo test` builds the examples beside the test
//! binaries, so this runs the same executable BENCHMARKS.md tells people to.

use std::path::PathBuf;
use std::process::Command;

use latchkey::domain::types::{ClientKind, GrantType};

use crate::helpers::spawn_app;

/// `target/<profile>/examples/load`, next to this test's `deps/` folder.
fn driver() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join("load");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds it; alone, run `cargo build --example load`",
        path.display()
    );
    path
}

#[tokio::test]
async fn every_scenario_runs_without_errors_and_writes_csv() {
    let app = spawn_app().await;
    let public = app.public_client().await;
    let confidential = app
        .create_client(
            ClientKind::Confidential,
            &[GrantType::ClientCredentials],
            "read write",
            None,
        )
        .await;
    let secret = confidential.secret.clone().expect("a secret");
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("load.csv");
    let pid = std::process::id().to_string();

    for scenario in [
        "refresh",
        "password",
        "client-credentials",
        "introspect",
        "jwks",
    ] {
        let mut command = Command::new(driver());
        command
            .args([
                scenario,
                "--url",
                &app.address,
                "--concurrency",
                "2",
                "--requests",
                "12",
                "--duration-secs",
                "60",
                "--label",
                "smoke",
                "--server-pid",
                &pid,
                "--public-client-id",
                &public.id,
                "--client-id",
                &confidential.id,
                "--csv",
            ])
            .arg(&csv)
            .env("LATCHKEY_LOAD_CLIENT_SECRET", &secret);
        // Waiting for the child blocks a thread; not this runtime's only
        // one, which also runs the server's background tasks. The session
        // purge among them takes SQLite's write gate: handed the gate while
        // this thread sat blocked, it would hold it unpolled, and every
        // write (the driver's sign-ups) would time out with 503.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("joins")
            .expect("the load driver starts");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            // The server's own account of it: store errors and hashing.
            let metrics = app
                .client
                .get(app.url("/metrics"))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            let relevant: Vec<&str> = metrics
                .lines()
                .filter(|l| {
                    !l.starts_with('#')
                        && (l.contains("store_errors")
                            || l.contains("password_hash")
                            || l.contains("login_failures")
                            || l.contains("pool"))
                })
                .collect();
            panic!(
                "{scenario}: {}\n{stdout}\n{stderr}\nserver metrics:\n{}",
                output.status,
                relevant.join("\n")
            );
        }
        assert!(
            stdout.contains("requests     12 (12 ok, 0 errors)"),
            "{scenario}:\n{stdout}"
        );
        assert!(stdout.contains("p99"), "{scenario}:\n{stdout}");
        assert!(
            !stdout.contains(&secret) && !stderr.contains(&secret),
            "the client secret leaked into the driver's output"
        );
    }

    let text = std::fs::read_to_string(&csv).expect("the CSV was written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "a header and one row per scenario:\n{text}");
    for (line, scenario) in lines[1..].iter().zip([
        "refresh",
        "password",
        "client-credentials",
        "introspect",
        "jwks",
    ]) {
        assert!(line.contains(scenario), "{line}");
        assert!(line.contains(",smoke,"), "{line}");
    }
}

#[test]
fn a_non_loopback_target_is_refused_before_any_request() {
    let output = Command::new(driver())
        .args(["jwks", "--url", "http://192.0.2.1:8080"])
        .output()
        .expect("the load driver starts");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
