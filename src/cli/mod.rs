//! The command line: clap types, dispatch, `--json` output and exit codes.
//! Commands call the same domain services as the HTTP layer and never run
//! SQL themselves. Failures print one line on stderr and exit non-zero.

pub mod audit;
pub mod clients;
pub mod keys;
pub mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::startup::{build_services, Application};

/// latchkey: a JWT-issuing auth server with rotating refresh tokens.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about)]
pub struct Cli {
    /// A TOML file overriding the built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Register and manage clients.
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// Runs the command line and maps the outcome to an exit code.
pub fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("latchkey: {err:#}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(settings.log());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("latchkey: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("latchkey: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let json = cli.json;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            build_services(settings, Arc::new(SystemClock), false).await?;
            print(
                json,
                &serde_json::json!({ "migrated": true }),
                "migrations applied",
            );
            Ok(())
        }
        Command::Keys(cmd) => {
            if let Some(change) = keys::run(cmd, &settings, json).await? {
                record_key_change(settings, change).await;
            }
            Ok(())
        }
        Command::Clients(cmd) => {
            let services = build_services(settings, Arc::new(SystemClock), true).await?;
            clients::run(cmd, &services, json).await
        }
        Command::Users(cmd) => {
            let services = build_services(settings, Arc::new(SystemClock), true).await?;
            users::run(cmd, &services, json).await
        }
        Command::Audit(cmd) => {
            let services = build_services(settings, Arc::new(SystemClock), false).await?;
            audit::run(cmd, &services, json).await
        }
    }
}

/// Writes a key change to the audit log of the configured store. The files
/// are the source of truth and the change already stands, so a store that
/// cannot be reached costs a warning, not a failure: a cron job rotating keys
/// must not fail, and retry into a second rotation, because the database
/// was down.
async fn record_key_change(settings: Settings, change: keys::KeyChange) {
    let recorded = async {
        let services = build_services(settings, Arc::new(SystemClock), false).await?;
        services
            .record_key_change(change.kind, change.detail, "cli")
            .await
            .context("writing the audit record")
    };
    if let Err(err) = recorded.await {
        eprintln!("latchkey: warning: the key change stands but was not written to the audit log: {err:#}");
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let issuer = settings.issuer().to_owned();
    let backend = settings.backend();
    let app = Application::build(settings, Arc::new(SystemClock))
        .await
        .context("starting latchkey")?;
    println!(
        "latchkey listening on port {} ({backend:?} store)",
        app.port()
    );
    println!("issuer: {issuer}  (discovery: {issuer}/.well-known/openid-configuration)");
    println!("make a first user:   curl -X POST {issuer}/v1/users -H 'Content-Type: application/json' -d '{{\"email\":\"you@example.com\",\"password\":\"a long passphrase\"}}'");
    println!("make a client:       latchkey clients create --name app --kind public --grants password,refresh_token --scopes openid,email");
    app.run_until_stopped().await.context("serving")
}

/// Prints `value` as JSON with `--json`, else `text`.
pub fn print(json: bool, value: &serde_json::Value, text: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}
