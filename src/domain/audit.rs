//! The audit log: security events in `audit_events`, each also written as
//! one log line with stable fields, read back by `latchkey audit list`, and
//! purged in bounded batches once older than `audit.retention_days`.
//!
//! An event holds when, what, whose (user, client, session), from where (the
//! client address) and why (a fixed reason or "by whom"); never a password,
//! token, secret or key material. `AuditKind` (in the store's records) is
//! the list of kinds; the `keys` commands, and start-up when it generates a
//! first key, record theirs here through `record_key_change`.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use super::error::DomainError;
use super::types::UserId;
use super::Services;
use crate::store::{AuditEvent, AuditKind};
use crate::telemetry::names;

/// Writes `ev` as one log line. Reuse of a refresh token is a theft signal,
/// so it is a warning; everything else is information.
pub fn trace_audit(ev: &AuditEvent) {
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(
                $level,
                audit.kind = %ev.kind,
                user.id = ev.user_id.map(tracing::field::display),
                client.id = ev.client_id.map(tracing::field::display),
                session.id = ev.session_id.map(tracing::field::display),
                remote.address = ev.address.as_deref(),
                audit.reason = ev.reason.as_deref(),
                "security event"
            )
        };
    }
    if ev.kind == AuditKind::RefreshTokenReused.as_str() {
        event!(tracing::Level::WARN);
    } else {
        event!(tracing::Level::INFO);
    }
}

impl Services {
    /// Appends `ev` to the audit log and logs it.
    ///
    /// # Errors
    /// Store failures.
    pub async fn insert_audit(&self, ev: &AuditEvent) -> Result<(), DomainError> {
        self.store.insert_audit(ev).await?;
        trace_audit(ev);
        Ok(())
    }

    /// Audit events, newest first: all of them or one user's, since a time.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_audit(
        &self,
        user: Option<UserId>,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, DomainError> {
        Ok(self.store.list_audit(user, since, limit.max(1)).await?)
    }

    /// Records a change to the signing keys, made by `latchkey keys …` or
    /// by start-up generating a first key: `kind` is `key_generated`,
    /// `key_rotated`, `key_retired`, `keys_rewrapped` or `keys_imported`;
    /// `detail` names the kids, schedule or count (public facts, no key
    /// material) and `by` who made the change.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_key_change(
        &self,
        kind: AuditKind,
        detail: String,
        by: &str,
    ) -> Result<(), DomainError> {
        let ev = AuditEvent::new(kind, self.now()).reason(format!("{detail} by {by}"));
        self.insert_audit(&ev).await
    }

    /// Deletes audit events older than `audit.retention_days` in bounded
    /// batches until none are left; with a retention of 0 it keeps them all.
    ///
    /// # Errors
    /// Store failures.
    pub async fn purge_audit_once(&self) -> Result<u64, DomainError> {
        let audit = self.policy.audit;
        // No retention keeps everything; one reaching back past the
        // calendar's start has nothing old enough to purge.
        let Some(before) = audit
            .retention
            .and_then(|r| self.now().checked_sub_signed(r))
        else {
            return Ok(0);
        };
        let mut total = 0;
        loop {
            let n = self
                .store
                .purge_audit(before, audit.purge_batch_size)
                .await?;
            total += n;
            if n < audit.purge_batch_size as u64 {
                break;
            }
            // Yield between batches so the purge never monopolises the store.
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        self.metrics.count(
            names::PURGED,
            vec![metrics::Label::new("what", "audit_events")],
            total,
        );
        Ok(total)
    }
}
