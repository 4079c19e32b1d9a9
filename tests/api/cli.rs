//! The `latchkey` binary: commands, `--json` output, exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

pub(crate) use crate::helpers::json;

pub(crate) struct Env {
    _dir: tempfile::TempDir,
    db: String,
    keys: String,
}

pub(crate) fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let keys = dir.path().join("keys").display().to_string();
    Env {
        _dir: dir,
        db,
        keys,
    }
}

pub(crate) fn latchkey(env: &Env, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("LATCHKEY__DATABASE__URL", &env.db)
        .env("LATCHKEY__KEYS__DIR", &env.keys)
        .env("LATCHKEY__LOG__LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clients_users_and_keys_commands_work_with_json_output() {
    let env = env();
    let (ok, out, err) = latchkey(
        &env,
        &[
            "clients",
            "create",
            "--name",
            "api",
            "--kind",
            "confidential",
            "--grants",
            "client_credentials",
            "--scopes",
            "read,write",
            "--audience",
            "https://api.example",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let c = json(&out);
    assert!(c["client_secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("lk_cs_")));
    assert_eq!(c["audience"], "https://api.example");
    assert_eq!(c["introspect"], false);

    let introspector = [
        "clients",
        "create",
        "--name",
        "gateway",
        "--kind",
        "confidential",
        "--grants",
        "client_credentials",
        "--introspect",
        "--json",
    ];
    let (ok, out, err) = latchkey(&env, &introspector, None);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["introspect"], true);
    // Introspection needs client authentication: not for a public client.
    let mut public = introspector;
    public[5] = "public";
    public[7] = "password";
    let (ok, out, err) = latchkey(&env, &public, None);
    assert!(!ok, "{out}");
    assert!(err.contains("--introspect"), "{err}");

    let (ok, out, err) = latchkey(
        &env,
        &[
            "clients",
            "create",
            "--name",
            "app",
            "--kind",
            "public",
            "--grants",
            "password,refresh_token",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(json(&out)["client_secret"].is_null());

    let (ok, out, err) = latchkey(
        &env,
        &[
            "users",
            "create",
            "--email",
            "Ops@Example.com",
            "--password-stdin",
            "--json",
        ],
        Some("correct horse battery\n"),
    );
    assert!(ok, "{err}");
    let u = json(&out);
    assert_eq!(u["email"], "ops@example.com");
    let id = u["id"].as_str().expect("id").to_owned();

    for cmd in ["disable", "enable", "revoke-sessions"] {
        let (ok, out, err) = latchkey(&env, &["users", cmd, &id, "--json"], None);
        assert!(ok, "{cmd}: {err}");
        json(&out);
    }

    let (ok, out, err) = latchkey(&env, &["keys", "list", "--json"], None);
    assert!(ok, "{err}");
    let keys = json(&out);
    assert_eq!(keys["keys"][0]["state"], "active");
    assert!(!out.contains("PRIVATE"));

    let (ok, out, err) = latchkey(&env, &["keys", "rotate", "--json"], None);
    assert!(ok, "{err}");
    let rotated = json(&out);
    let (_, out, _) = latchkey(&env, &["keys", "list", "--json"], None);
    let keys = json(&out);
    let states: Vec<&str> = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["active", "next"]);
    assert_eq!(keys["keys"][1]["kid"], rotated["kid"]);
}

#[test]
fn failures_exit_non_zero_with_one_line_on_stderr() {
    let env = env();
    let (ok, _, err) = latchkey(&env, &["users", "disable", "not-a-uuid"], None);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (ok, _, err) = latchkey(
        &env,
        &["users", "create", "--email", "x@example.com"],
        Some("short\n"),
    );
    assert!(!ok);
    assert!(err.contains("weak password"), "{err}");
    let (ok, _, err) = latchkey(&env, &["keys", "retire", "nope"], None);
    assert!(!ok);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn bad_configuration_names_the_key() {
    let env = env();
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    child
        .args(["migrate"])
        .env("LATCHKEY__SERVER__PORT", "not-a-port")
        .env("LATCHKEY__DATABASE__URL", &env.db);
    let out = child.output().expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port"), "{err}");

    let file = env._dir.path().join("bad.toml");
    std::fs::write(&file, "[keys]\nrsa_bits = 1000\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["migrate", "--config", file.to_str().expect("utf8")])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.rsa_bits"));
}

#[test]
fn audit_list_reads_the_log_and_key_changes_are_recorded() {
    let env = env();
    let (ok, out, err) = latchkey(
        &env,
        &["users", "create", "--email", "ada@example.com", "--json"],
        Some("correct horse battery\n"),
    );
    assert!(ok, "{err}");
    let ada = json(&out)["id"].as_str().expect("id").to_owned();
    let (ok, _, err) = latchkey(&env, &["users", "disable", &ada], None);
    assert!(ok, "{err}");
    let (ok, out, err) = latchkey(&env, &["keys", "rotate", "--json"], None);
    assert!(ok, "{err}");
    let kid = json(&out)["kid"].as_str().expect("kid").to_owned();

    let (ok, out, err) = latchkey(&env, &["audit", "list", "--json"], None);

    assert!(ok, "{err}");
    let events = json(&out)["events"].as_array().expect("events").clone();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    // The first command on a fresh machine created the first key.
    assert_eq!(
        kinds,
        [
            "key_rotated",
            "user_disabled",
            "user_signed_up",
            "key_generated"
        ]
    );
    assert!(events[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains(&kid) && r.contains("by cli")));
    assert!(events[0]["at"].is_string());

    let (ok, out, err) = latchkey(
        &env,
        &["audit", "list", "--user", &ada, "--since", "1h", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let mine = json(&out)["events"].as_array().expect("events").clone();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|e| e["user_id"] == ada.as_str()));

    let (ok, out, err) = latchkey(&env, &["audit", "list", "--since", "2999-01-01"], None);
    assert!(ok, "{err}");
    assert!(out.trim().is_empty(), "{out}");

    let (ok, out, _) = latchkey(&env, &["audit", "list"], None);
    assert!(ok);
    assert_eq!(out.lines().count(), 4);
    assert!(out
        .lines()
        .next()
        .is_some_and(|l| l.contains("key_rotated")));

    let (ok, _, err) = latchkey(&env, &["audit", "list", "--since", "last week"], None);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--since"), "{err}");
}

#[test]
fn keys_generate_prepares_a_folder_that_several_instances_can_share() {
    use std::os::unix::fs::PermissionsExt;
    let env = env();

    let (ok, out, err) = latchkey(&env, &["keys", "generate", "--json"], None);

    assert!(ok, "{err}");
    assert_eq!(json(&out)["state"], "active");
    let secret = std::path::Path::new(&env.keys).join("refresh.secret");
    let mode = std::fs::metadata(&secret)
        .expect("the refresh-token secret exists before any instance starts")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (ok, _, err) = latchkey(&env, &["keys", "generate"], None);
    assert!(!ok, "a second generate is refused");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn migrate_before_any_key_exists_leaves_the_keys_folder_alone() {
    // The deployment order: `migrate`, then `keys generate` on the shared
    // (possibly not yet mounted) keys folder.
    let env = env();
    let (ok, out, err) = latchkey(&env, &["migrate", "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["migrated"], true);
    assert!(
        !std::path::Path::new(&env.keys).exists(),
        "migrate created {}",
        env.keys
    );
    let (ok, _, err) = latchkey(&env, &["audit", "list", "--json"], None);
    assert!(ok, "{err}");
    assert!(!std::path::Path::new(&env.keys).exists());
    let (ok, _, err) = latchkey(&env, &["keys", "generate", "--json"], None);
    assert!(ok, "{err}");
    assert!(std::path::Path::new(&env.keys)
        .join("refresh.secret")
        .exists());
}

#[test]
fn users_verify_email_and_send_reset_work() {
    let env = env();
    let (ok, out, err) = latchkey(
        &env,
        &["users", "create", "--email", "desk@example.com", "--json"],
        Some("correct horse battery\n"),
    );
    assert!(ok, "{err}");
    let id = json(&out)["id"].as_str().expect("id").to_owned();

    let (ok, out, err) = latchkey(&env, &["users", "verify-email", &id, "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["email_verified"], true);
    let (ok, _, err) = latchkey(
        &env,
        &["users", "verify-email", &uuid::Uuid::new_v4().to_string()],
        None,
    );
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (ok, out, err) = latchkey(
        &env,
        &[
            "users",
            "send-reset",
            "--email",
            "Desk@Example.com",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(json(&out)["queued"], true);
    let (ok, _, err) = latchkey(
        &env,
        &["users", "send-reset", "--email", "nobody@example.com"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("no enabled user"), "{err}");
}

#[test]
fn clients_lifecycle_commands_work_with_json_output_and_are_audited() {
    let env = env();
    let (ok, out, err) = latchkey(
        &env,
        &[
            "clients",
            "create",
            "--name",
            "partner",
            "--kind",
            "confidential",
            "--grants",
            "client_credentials",
            "--scopes",
            "read,write",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let created = json(&out);
    let id = created["client_id"].as_str().expect("id").to_owned();
    let first_secret = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();

    let (ok, out, err) = latchkey(&env, &["clients", "list", "--json"], None);
    assert!(ok, "{err}");
    let listed = json(&out);
    assert_eq!(listed.as_array().expect("array").len(), 1);
    assert_eq!(listed[0]["client_id"], id.as_str());
    assert!(!out.contains(&first_secret));

    let (ok, out, err) = latchkey(
        &env,
        &[
            "clients", "update", &id, "--name", "renamed", "--scopes", "read", "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let updated = json(&out);
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["scopes"], serde_json::json!(["read"]));

    let (ok, out, err) = latchkey(&env, &["clients", "disable", &id, "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["disabled"], true);
    let (ok, out, err) = latchkey(&env, &["clients", "show", &id, "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["disabled"], true);
    let (ok, _, err) = latchkey(&env, &["clients", "enable", &id], None);
    assert!(ok, "{err}");

    let (ok, out, err) = latchkey(
        &env,
        &["clients", "rotate-secret", &id, "--overlap", "2h", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let rotated = json(&out);
    let second_secret = rotated["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(second_secret.starts_with("lk_cs_"));
    assert_ne!(second_secret, first_secret);
    assert!(rotated["previous_secret_valid_until"].is_string());
    let (ok, out, err) = latchkey(
        &env,
        &["clients", "rotate-secret", &id, "--overlap", "0", "--json"],
        None,
    );
    assert!(ok, "{err}");
    assert!(json(&out)["previous_secret_valid_until"].is_null());
    let (ok, _, err) = latchkey(
        &env,
        &["clients", "rotate-secret", &id, "--overlap", "soon"],
        None,
    );
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (ok, out, err) = latchkey(&env, &["clients", "delete", &id, "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["deleted"], true);
    let (ok, _, err) = latchkey(&env, &["clients", "show", &id], None);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (ok, out, err) = latchkey(&env, &["audit", "list", "--json"], None);
    assert!(ok, "{err}");
    assert!(!out.contains(&first_secret) && !out.contains(&second_secret));
    let events = json(&out)["events"].as_array().expect("events").clone();
    let mine: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["client_id"] == id.as_str())
        .map(|e| {
            (
                e["kind"].as_str().expect("kind"),
                e["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let kinds: Vec<&str> = mine.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            "client_deleted",
            "client_secret_rotated",
            "client_secret_rotated",
            "client_enabled",
            "client_disabled",
            "client_updated",
            "client_created"
        ]
    );
    assert!(
        mine[..6].iter().all(|(_, r)| r.contains("by cli")),
        "{mine:?}"
    );
}

#[test]
fn a_store_failure_prints_what_failed_and_why() {
    let env = env();
    let (ok, out, err) = latchkey(
        &env,
        &["--json", "users", "create", "--email", "ro@example.com"],
        Some("correct horse battery\n"),
    );
    assert!(ok, "{err}");
    let id = json(&out)["id"].as_str().expect("id").to_owned();
    // The same database opened read-only: the write itself fails.
    let read_only = Env {
        db: format!("{}?mode=ro", env.db),
        keys: env.keys.clone(),
        _dir: tempfile::tempdir().expect("tempdir"),
    };
    let (ok, _, err) = latchkey(&read_only, &["users", "disable", &id], None);
    assert!(!ok);
    // The whole chain: the command's step, the layer, the database's words.
    assert!(
        err.contains("disabling the user: the store failed"),
        "{err}"
    );
    assert!(err.contains("readonly"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
