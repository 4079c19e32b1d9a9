//! `latchkey users create | disable | enable | revoke-sessions | verify-email |
//! send-reset`.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;

use super::print;
use crate::domain::outbox::MailKind;
use crate::domain::types::{Email, Password, UserId};
use crate::domain::Services;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password is read from stdin (one line).
    Create {
        /// The new user's email address, stored trimmed and lower-cased.
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
    /// Mark a user's email address verified (on the operator's word).
    VerifyEmail {
        /// The user's id.
        id: String,
    },
    /// Queue a password-reset mail for the account with this address; a
    /// running server delivers it.
    SendReset {
        /// The account's email.
        #[arg(long)]
        email: String,
    },
}

fn user_id(raw: &str) -> anyhow::Result<UserId> {
    UserId::parse(raw).context("a user id is a UUID")
}

/// Runs a user command and prints its result, as JSON with `json`.
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
                .context("creating the user")?;
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
                .context("disabling the user")?;
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
                .context("enabling the user")?;
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
                .context("revoking the user's sessions")?;
            print(
                json,
                &serde_json::json!({ "id": id, "revoked": n }),
                &format!("revoked {n} sessions of user {id}"),
            );
        }
        UsersCommand::VerifyEmail { id } => {
            services
                .mark_email_verified(user_id(&id)?, "cli")
                .await
                .context("marking the email verified")?;
            print(
                json,
                &serde_json::json!({ "id": id, "email_verified": true }),
                &format!("marked the email of user {id} verified"),
            );
        }
        UsersCommand::SendReset { email } => {
            let parsed = Email::parse(&email).context("not a valid email address")?;
            let sent = services
                .send_mail_for(&parsed, MailKind::ResetPassword)
                .await
                .context("sending the reset mail")?;
            if !sent {
                anyhow::bail!("no enabled user has this email address");
            }
            print(
                json,
                &serde_json::json!({ "email": parsed.as_str(), "queued": true }),
                &format!(
                    "queued a password-reset mail to {}; a running server sends it",
                    parsed.as_str()
                ),
            );
        }
    }
    Ok(())
}
