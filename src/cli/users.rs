//! `latchkey users create | disable | enable | revoke-sessions`.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;

use super::print;
use crate::domain::types::{Password, UserId};
use crate::domain::Services;

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password is read from stdin (one line).
    Create {
        /// The email.
        #[arg(long)]
        email: String,
        /// Read the password from stdin (the default; kept for scripts that
        /// pass it explicitly).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: no login, no refresh; every session is revoked.
    Disable {
        /// The user's id.
        id: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's id.
        id: String,
    },
    /// Revoke every session of a user.
    RevokeSessions {
        /// The user's id.
        id: String,
    },
}

fn user_id(raw: &str) -> anyhow::Result<UserId> {
    UserId::parse(raw).context("a user id is a UUID")
}

/// Runs a user command.
///
/// # Errors
/// Invalid arguments, unknown users, store failures.
pub async fn run(cmd: UsersCommand, services: &Services, json: bool) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Create {
            email,
            password_stdin: _,
        } => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let password = Password(line.trim_end_matches(['\r', '\n']).to_owned());
            let user = services
                .create_user(&email, password, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print(
                json,
                &serde_json::json!({ "id": user.id.to_string(), "email": user.email, "created_at": user.created_at }),
                &format!("created user {} ({})", user.id, user.email),
            );
        }
        UsersCommand::Disable { id } => {
            services
                .set_user_disabled(user_id(&id)?, true, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print(
                json,
                &serde_json::json!({ "id": id, "disabled": true }),
                &format!("disabled user {id}; sessions revoked"),
            );
        }
        UsersCommand::Enable { id } => {
            services
                .set_user_disabled(user_id(&id)?, false, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print(
                json,
                &serde_json::json!({ "id": id, "disabled": false }),
                &format!("enabled user {id}"),
            );
        }
        UsersCommand::RevokeSessions { id } => {
            let n = services
                .revoke_user_sessions(user_id(&id)?, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print(
                json,
                &serde_json::json!({ "id": id, "revoked": n }),
                &format!("revoked {n} sessions of user {id}"),
            );
        }
    }
    Ok(())
}
