//! The outbox: mail is queued as a row in the store, in the transaction that
//! creates its reason (a token), and a background sender on every instance
//! delivers it. Requests never wait for a mail server; a message survives a
//! restart; several instances never send one message twice, because each
//! row is claimed by one sender under a lease (see `OutboxStore`). A failed
//! delivery is retried with exponential backoff, then given up. Secrets in a
//! message (links) stay out of the log, except with the `log` transport,
//! which exists to show them.

pub mod templates;
mod transport;

use std::sync::Arc;

use chrono::Duration;

pub use self::templates::{MailKind, Templates};
pub use self::transport::{Delivery, MailTransport, Mailer, MailerSettings, SmtpTls};
use super::error::DomainError;
use super::Services;
use crate::store::{ClaimedMail, MailMessage};
use crate::telemetry::names;

/// Messages claimed per round. The lease covers the whole batch.
const BATCH: i64 = 10;

impl Services {
    /// Renders a message of `kind` for `recipient`, ready to queue.
    pub fn compose_mail(
        &self,
        kind: MailKind,
        recipient: &str,
        link: &str,
        expires: &str,
    ) -> MailMessage {
        let email = &self.policy.mail;
        let r = self
            .mail_templates
            .render(kind, &email.product_name, link, expires);
        MailMessage {
            id: uuid::Uuid::new_v4(),
            recipient: recipient.to_owned(),
            subject: r.subject,
            body_text: r.text,
            body_html: r.html,
            created_at: self.now(),
        }
    }

    /// Counts a queued message and wakes this instance's sender.
    pub(crate) fn mail_queued(&self) {
        self.metrics.count(names::MAIL_QUEUED, vec![], 1);
        self.mail_wake.notify_one();
    }

    /// Queues a message that no token goes with (a notice).
    ///
    /// # Errors
    /// Store failures.
    pub async fn enqueue_mail(&self, mail: &MailMessage) -> Result<(), DomainError> {
        self.store.enqueue_mail(mail).await?;
        self.mail_queued();
        Ok(())
    }

    /// One sender round: claims due messages and delivers them one by one.
    /// Returns how many it claimed: a full batch means more may be due.
    ///
    /// # Errors
    /// Store failures, while claiming or while settling a message; no
    /// randomness for a token a queued request needs.
    pub async fn send_due_mail(&self, mailer: &Mailer) -> Result<usize, DomainError> {
        let email = &self.policy.mail;
        let timeout = email.delivery_timeout;
        let now = self.now();
        // Long enough for every delivery of the batch to time out, so a live
        // sender always settles its rows before another may claim them.
        let lease = Duration::seconds(saturating_secs(timeout.as_secs()) * (BATCH + 2));
        let claimed = self.store.claim_mail(now, now + lease, BATCH).await?;
        let count = claimed.len();
        for mail in claimed {
            let mail = match mail.request {
                None => mail,
                Some(purpose) => match self.resolve_mail_request(mail, purpose).await? {
                    Some(resolved) => resolved,
                    None => continue,
                },
            };
            let outcome = match tokio::time::timeout(timeout, mailer.deliver(&mail.message)).await {
                Ok(outcome) => outcome,
                Err(_) => Delivery::Transient("the mail server did not answer in time"),
            };
            self.settle(mail, outcome).await?;
        }
        Ok(count)
    }

    async fn settle(&self, mail: ClaimedMail, outcome: Delivery) -> Result<(), DomainError> {
        let now = self.now();
        let id = mail.message.id;
        match outcome {
            Delivery::Sent => {
                self.store.mark_mail_sent(id, mail.claim, now).await?;
                self.metrics.count(names::MAIL_SENT, vec![], 1);
                tracing::info!(mail.id = %id, "mail sent");
            }
            Delivery::Transient(why) | Delivery::Permanent(why) => {
                let permanent = matches!(outcome, Delivery::Permanent(_));
                let retry_at = (!permanent && mail.attempts < self.policy.mail.max_attempts)
                    .then(|| now + self.retry_delay(mail.attempts));
                self.store
                    .mark_mail_failed(id, mail.claim, now, retry_at, why)
                    .await?;
                self.metrics.count(names::MAIL_ATTEMPTS_FAILED, vec![], 1);
                match retry_at {
                    Some(at) => {
                        tracing::warn!(mail.id = %id, mail.attempts = mail.attempts, retry_at = %at, reason = why, "mail delivery failed; will retry")
                    }
                    None => {
                        self.metrics.count(names::MAIL_FAILED, vec![], 1);
                        tracing::error!(mail.id = %id, mail.attempts = mail.attempts, reason = why, "mail delivery failed; given up");
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes one batch of email tokens that expired a day ago and of mail
    /// settled (sent or given up, bodies already blanked) a week ago.
    /// Returns how many rows went, of both kinds together.
    ///
    /// # Errors
    /// Store failures.
    pub async fn purge_mail_once(&self) -> Result<u64, DomainError> {
        let now = self.now();
        let batch = self.policy.sessions.purge_batch_size;
        let tokens = self
            .store
            .purge_email_tokens(now - Duration::days(1), batch)
            .await?;
        let mail = self
            .store
            .purge_outbox(now - Duration::days(7), batch)
            .await?;
        for (what, n) in [("email_tokens", tokens), ("outbox", mail)] {
            self.metrics
                .count(names::PURGED, vec![metrics::Label::new("what", what)], n);
        }
        Ok(tokens + mail)
    }

    /// The wait before attempt `attempts + 1`: `retry_base_secs` doubled per
    /// attempt, at most `retry_max_secs`.
    fn retry_delay(&self, attempts: i64) -> Duration {
        let e = &self.policy.mail;
        Duration::seconds(backoff_secs(e.retry_base_secs, e.retry_max_secs, attempts))
    }
}

/// `base * 2^(attempts-1)`, capped at `max`, without overflow.
pub fn backoff_secs(base: i64, max: i64, attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
    base.saturating_mul(2_i64.saturating_pow(exp)).min(max)
}

fn saturating_secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 64)
}

/// Runs the sender until `stop` turns true: a round whenever mail is queued
/// on this instance, and every `email.poll_interval_ms` for mail queued
/// elsewhere (another instance, the CLI) or due for a retry. A round in
/// progress finishes before the sender stops, so no claimed message is left
/// half-settled by a graceful shutdown.
pub fn spawn_sender(
    services: Services,
    mailer: Arc<Mailer>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let every = services.policy.mail.poll_interval;
    tokio::spawn(async move {
        while !*stop.borrow() {
            loop {
                match services.send_due_mail(&mailer).await {
                    Ok(n) if n as i64 == BATCH && !*stop.borrow() => continue,
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(?err, "mail sender could not claim mail");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = services.mail_wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_secs(30, 3600, 1), 30);
        assert_eq!(backoff_secs(30, 3600, 2), 60);
        assert_eq!(backoff_secs(30, 3600, 3), 120);
        assert_eq!(backoff_secs(30, 3600, 8), 3600);
        assert_eq!(backoff_secs(30, 3600, i64::MAX), 3600);
        assert_eq!(backoff_secs(30, 3600, 0), 30);
    }
}
