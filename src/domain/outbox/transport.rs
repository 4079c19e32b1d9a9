//! How a message leaves: the `log` transport (development: the message,
//! link included, goes to the log at info) or SMTP through lettre, with
//! STARTTLS or implicit TLS (rustls), or plain text to a loopback relay.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::store::MailMessage;

/// `email.transport`: how mail leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Write messages to the log (development).
    Log,
    /// Deliver through an SMTP server.
    Smtp,
}

/// `email.smtp_tls`: how the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text; the configuration allows it for loopback hosts only.
    None,
    /// Upgrade with STARTTLS (RFC 3207); refuse a server that cannot.
    Starttls,
    /// Implicit TLS from the first byte (RFC 8314).
    Tls,
}

/// Where and how to deliver, as validated from `[email]`.
#[derive(Clone)]
pub struct MailerSettings {
    pub transport: MailTransport,
    /// The From header, an RFC 5322 address.
    pub from: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    /// SMTP AUTH user; empty for none.
    pub smtp_username: String,
    pub smtp_password: secrecy::SecretString,
    /// One SMTP conversation gives up after this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for MailerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailerSettings")
            .field("transport", &self.transport)
            .field("from", &self.from)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The outcome of one delivery attempt. The reasons are fixed words: they
/// are stored in the outbox and logged, and never carry a message's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The mail server accepted the message.
    Sent,
    /// Worth another attempt later (unreachable, 4xx, timeout).
    Transient(&'static str),
    /// Will never succeed (5xx, an unusable address).
    Permanent(&'static str),
}

/// The transport the outbox sender delivers through, built once from
/// `MailerSettings`.
pub enum Mailer {
    /// Writes each message to the log.
    Log {
        /// The From header.
        from: Mailbox,
    },
    /// Delivers through an SMTP server.
    Smtp {
        /// The From header.
        from: Mailbox,
        /// lettre's pooled transport.
        transport: AsyncSmtpTransport<Tokio1Executor>,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Log { .. } => f.write_str("Mailer::Log"),
            Self::Smtp { .. } => f.write_str("Mailer::Smtp"),
        }
    }
}

/// A mail setting that passed the configuration's checks but that lettre
/// refused: the From address or the SMTP host.
#[derive(Debug, thiserror::Error)]
#[error("mail settings: {0}")]
pub struct MailerError(&'static str);

impl Mailer {
    /// The transport `[email]` describes (already validated).
    ///
    /// # Errors
    /// The From address or the SMTP host is unusable.
    pub fn new(e: &MailerSettings) -> Result<Self, MailerError> {
        let from: Mailbox = e
            .from
            .parse()
            .map_err(|_| MailerError("email.from is not an address"))?;
        if e.transport == MailTransport::Log {
            return Ok(Self::Log { from });
        }
        let host = e.smtp_host.trim();
        let builder = match e.smtp_tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|_| MailerError("email.smtp_host is not a valid host name"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|_| MailerError("email.smtp_host is not a valid host name"))?,
        };
        let mut builder = builder.port(e.smtp_port).timeout(Some(e.timeout));
        if !e.smtp_username.is_empty() {
            builder = builder.credentials(Credentials::new(
                e.smtp_username.clone(),
                e.smtp_password.expose_secret().to_owned(),
            ));
        }
        Ok(Self::Smtp {
            from,
            transport: builder.build(),
        })
    }

    /// One delivery attempt. Nothing fails here: the outcome says whether
    /// to try again, and the `log` transport always reports `Sent`.
    pub async fn deliver(&self, m: &MailMessage) -> Delivery {
        match self {
            Self::Log { from } => {
                // The development transport: showing the link is its purpose.
                tracing::info!(
                    mail.id = %m.id,
                    mail.from = %from,
                    mail.to = %m.recipient,
                    mail.subject = %m.subject,
                    "mail (log transport, not sent):\n{}",
                    m.body_text
                );
                Delivery::Sent
            }
            Self::Smtp { from, transport } => {
                let message = match build_message(from, m) {
                    Ok(message) => message,
                    Err(why) => return Delivery::Permanent(why),
                };
                match transport.send(message).await {
                    Ok(_) => Delivery::Sent,
                    Err(err) if err.is_permanent() => {
                        tracing::warn!(mail.id = %m.id, err = %err, "the mail server refused a message");
                        Delivery::Permanent("the mail server refused the message")
                    }
                    Err(err) => {
                        tracing::warn!(mail.id = %m.id, err = %err, "mail delivery attempt failed");
                        Delivery::Transient("the mail server could not take the message now")
                    }
                }
            }
        }
    }
}

fn build_message(from: &Mailbox, m: &MailMessage) -> Result<Message, &'static str> {
    let to: Mailbox = m
        .recipient
        .parse()
        .map_err(|_| "the recipient address is not valid")?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(m.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            m.body_text.clone(),
            m.body_html.clone(),
        ))
        .map_err(|_| "the message could not be built")
}
