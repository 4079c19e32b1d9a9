//! What the domain tells the metrics registry: the outcome of every grant as
//! it happens, and the gauges sampled when `/metrics` is scraped (pool
//! occupancy, argon2id slots and queue, signing-key age), so that a scrape
//! always sees the current values and nothing polls in between.
//!
//! Login failures are labelled only with reasons the client already knows
//! from the response. Unknown email, wrong password and disabled user share
//! `bad_credentials`, exactly as they share one answer on the wire: a
//! `/metrics` that told them apart would be a user-enumeration oracle for
//! anyone who can read it.

use metrics::Label;

use super::error::{DomainError, RefreshFailure};
use super::grants::{Granted, RefreshOutcome};
use super::types::GrantType;
use super::Services;
use crate::keys::manifest::KeyState;
use crate::telemetry::names;

/// The `outcome` label of a successful refresh.
pub fn refresh_outcome(outcome: RefreshOutcome) -> &'static str {
    match outcome {
        RefreshOutcome::Rotated => "rotated",
        RefreshOutcome::GraceReplay => "grace_replay",
    }
}

/// The `outcome` label of a refused refresh.
pub fn refresh_failure(failure: RefreshFailure) -> &'static str {
    match failure {
        RefreshFailure::Reused => "reuse_revoked",
        RefreshFailure::Expired => "expired",
        RefreshFailure::Revoked => "revoked",
        RefreshFailure::Unknown => "unknown",
        RefreshFailure::WrongClient => "wrong_client",
        RefreshFailure::DpopKeyMismatch => "dpop_key_mismatch",
    }
}

/// The `reason` label of a failed password login, or `None` when the
/// failure is not about the login (bad client, bad scope, store down).
fn login_failure(err: &DomainError) -> Option<&'static str> {
    match err {
        DomainError::InvalidCredentials => Some("bad_credentials"),
        DomainError::Throttled { .. } => Some("throttled"),
        DomainError::HashQueueFull => Some("busy"),
        _ => None,
    }
}

impl Services {
    /// Counts a grant's outcome: tokens issued by grant, refresh outcomes,
    /// login failures by reason, throttled logins.
    pub(crate) fn record_grant(&self, grant: GrantType, out: &Result<Granted, DomainError>) {
        let m = &self.metrics;
        match out {
            Ok(granted) => {
                m.count_one(names::TOKENS_ISSUED, "grant", grant.as_str());
                if let Some(outcome) = granted.refresh {
                    m.count_one(names::REFRESHES, "outcome", refresh_outcome(outcome));
                }
            }
            Err(DomainError::RefreshRefused(f)) => {
                m.count_one(names::REFRESHES, "outcome", refresh_failure(*f));
            }
            Err(err) if grant == GrantType::Password => {
                if let Some(reason) = login_failure(err) {
                    m.count_one(names::LOGIN_FAILURES, "reason", reason);
                }
                if matches!(err, DomainError::Throttled { .. }) {
                    m.count(names::THROTTLED, vec![], 1);
                }
            }
            Err(_) => {}
        }
    }

    /// Samples the gauges and renders the registry in the Prometheus text
    /// format.
    pub fn render_metrics(&self) -> String {
        self.sample_gauges();
        self.metrics.render()
    }

    fn sample_gauges(&self) {
        let m = &self.metrics;
        let pool = self.store.pool_stats();
        m.set(names::POOL_SIZE, vec![], f64::from(pool.size));
        m.set(names::POOL_IDLE, vec![], f64::from(pool.idle));
        m.set(names::POOL_MAX, vec![], f64::from(pool.max));
        let slots = self.passwords.slot_count();
        m.set(names::HASH_SLOTS, vec![], slots as f64);
        m.set(
            names::HASHES_IN_FLIGHT,
            vec![],
            self.passwords.in_flight() as f64,
        );
        m.set(
            names::HASHES_WAITING,
            vec![],
            self.passwords.waiting() as f64,
        );
        let now = self.now();
        let age = self
            .keys
            .signing_key(now)
            .map(|k| (now - k.entry.activates_at).num_seconds().max(0))
            .unwrap_or(0);
        m.set(names::KEY_AGE, vec![], age as f64);
        m.set(names::KEY_RING_VERSION, vec![], self.keys.version() as f64);
        let states = self.keys.states(now);
        for (state, label) in [
            (KeyState::Next, "next"),
            (KeyState::Active, "active"),
            (KeyState::Retired, "retired"),
        ] {
            let n = states.iter().filter(|(_, s)| *s == state).count();
            m.set(names::KEYS, vec![Label::new("state", label)], n as f64);
        }
    }
}
