//! DPoP (RFC 9449) at latchkey: a proof is checked by the rules shared with
//! `latchkey-verify` (`latchkey_verify::dpop::check_proof`), then against
//! this server's nonce (§8, when `dpop.require_nonce` is on) and its replay
//! store (§11.1: the `jti` is remembered in the database, per key, until the
//! proof's `iat` can no longer pass, so a replay fails on every instance).
//! What a valid proof binds (access tokens, public clients' sessions) is
//! decided by the grants and the verification path, not here.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::DateTime;
use latchkey_verify::dpop::{check_proof, ProofError, ProofRequest};

use super::error::DomainError;
use super::types::ClientKind;
use super::verify::VerifiedAccess;
use super::Services;
use crate::store::ClientRecord;

pub use latchkey_verify::dpop::SIGNING_ALGS;

/// Why DPoP refused a request. At the token endpoint each is a 400
/// (`invalid_dpop_proof`, `use_dpop_nonce`); at a protected resource a 401
/// with a `DPoP` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpopFailure {
    /// The proof failed a check of RFC 9449 §4.3 (or was replayed).
    Proof(ProofError),
    /// More than one `DPoP` header (§4.3 check 1).
    SeveralProofs,
    /// The client requires DPoP and sent no proof.
    Required,
    /// The proof lacks a current server nonce; retry with this one (§8).
    Nonce(String),
    /// A DPoP-bound access token was presented as a bearer token, or without
    /// a proof (§7.1).
    BoundTokenWithoutProof,
    /// The `DPoP` scheme with a token that is not DPoP-bound.
    UnboundToken,
    /// The authorization request named a DPoP key (`dpop_jkt`, §10) and
    /// the code was presented without a proof, or with another key's.
    CodeBoundToAnotherKey,
}

/// A request's DPoP inputs, as the HTTP layer read them.
#[derive(Debug, Clone, Copy)]
pub struct ProofInput<'a> {
    /// Every `DPoP` header value (exactly one is allowed).
    pub proofs: &'a [&'a str],
    /// The request's method, which the proof's `htm` must equal.
    pub method: &'a str,
    /// The route's path (`/oauth/token`); the URL the proof must name is the
    /// issuer's base with this path, as discovery advertises it.
    pub path: &'a str,
    /// At a protected resource, the access token presented.
    pub access_token: Option<&'a str>,
}

/// Nonces are this long in bytes before base64url: an 8-byte time slot and
/// a 16-byte MAC.
const NONCE_BYTES: usize = 24;

impl Services {
    /// Checks the request's proof, if it has one: `Ok(Some(jkt))` for a
    /// valid, first-seen proof, `Ok(None)` without one.
    ///
    /// # Errors
    /// `DpopRefused` / `DpopAccessRefused` (by `at_resource`) for a bad,
    /// replayed or nonce-less proof; store failures.
    pub async fn check_dpop(
        &self,
        input: &ProofInput<'_>,
        at_resource: bool,
    ) -> Result<Option<String>, DomainError> {
        let refuse = |f: DpopFailure| {
            if at_resource {
                DomainError::DpopAccessRefused(f)
            } else {
                DomainError::DpopRefused(f)
            }
        };
        let proof = match input.proofs {
            [] => return Ok(None),
            [one] => *one,
            _ => return Err(refuse(DpopFailure::SeveralProofs)),
        };
        let url = format!("{}{}", self.policy.issuer, input.path);
        let request = ProofRequest {
            method: input.method,
            url: &url,
            access_token: input.access_token,
        };
        let now = self.now().timestamp();
        let window = self.policy.dpop.proof_window_secs;
        let checked =
            check_proof(proof, &request, now, window).map_err(|e| refuse(DpopFailure::Proof(e)))?;
        if self.policy.dpop.require_nonce
            && !checked
                .nonce
                .as_deref()
                .is_some_and(|n| self.is_current_nonce(n, now))
        {
            return Err(refuse(DpopFailure::Nonce(self.nonce_at(now))));
        }
        // Remembered past the window by the leeway too: an instance whose
        // clock lags the others' still refuses the replay.
        let until = checked.remember_until(window, self.policy.tokens.leeway.num_seconds());
        let until = DateTime::from_timestamp(until, 0)
            .ok_or_else(|| refuse(DpopFailure::Proof(ProofError::Time)))?;
        let namespace = format!("dpop:{}", checked.jkt);
        if !self
            .store
            .remember_jti(&namespace, &checked.jti_digest, until)
            .await?
        {
            return Err(refuse(DpopFailure::Proof(ProofError::Replayed)));
        }
        Ok(Some(checked.jkt))
    }

    /// Verifies an access token presented with the `DPoP` scheme at one of
    /// latchkey's own endpoints (RFC 9449 §7.1): the token as
    /// `verify_own_access_token` does, that it is DPoP-bound, and the
    /// request's proof, which must carry the token's hash (`ath`) and be
    /// made with the key the token is bound to.
    ///
    /// # Errors
    /// As `verify_own_access_token`; `DpopAccessRefused` for an unbound
    /// token, a missing, bad or replayed proof, or another key.
    pub async fn verify_dpop_access(
        &self,
        token: &str,
        input: &ProofInput<'_>,
    ) -> Result<VerifiedAccess, DomainError> {
        let refuse = DomainError::DpopAccessRefused;
        let access = self.verify_own_access_token(token).await?;
        let Some(bound) = access.claims.cnf.as_ref().map(|c| c.jkt.clone()) else {
            return Err(refuse(DpopFailure::UnboundToken));
        };
        let input = ProofInput {
            access_token: Some(token),
            ..*input
        };
        match self.check_dpop(&input, true).await? {
            Some(jkt) if jkt == bound => Ok(access),
            Some(_) => Err(refuse(DpopFailure::Proof(ProofError::Binding))),
            None => Err(refuse(DpopFailure::Proof(ProofError::Malformed))),
        }
    }

    /// `access` when it may be used without a proof: a DPoP-bound token sent
    /// as a bearer token (or in a cookie) is refused, or stealing it would
    /// be enough to use it (RFC 9449 §7.2).
    ///
    /// # Errors
    /// `DpopAccessRefused(BoundTokenWithoutProof)`.
    pub fn refuse_bound_without_proof(
        &self,
        access: VerifiedAccess,
    ) -> Result<VerifiedAccess, DomainError> {
        if access.claims.cnf.is_some() {
            return Err(DomainError::DpopAccessRefused(
                DpopFailure::BoundTokenWithoutProof,
            ));
        }
        Ok(access)
    }

    /// The nonce to hand out in `DPoP-Nonce` now, when nonces are on.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.policy
            .dpop
            .require_nonce
            .then(|| self.nonce_at(self.now().timestamp()))
    }

    fn nonce_key(&self) -> hmac::Key {
        self.refresh_secret.derive("dpop-nonce")
    }

    fn slot(&self, now: i64) -> i64 {
        now.div_euclid(self.policy.dpop.nonce_lifetime_secs)
    }

    /// A nonce is its time slot and a MAC over it under a key derived from
    /// the server secret: every instance issues and accepts the same ones
    /// with no shared state, and nobody else can mint one.
    fn nonce_at(&self, now: i64) -> String {
        let slot = self.slot(now).to_be_bytes();
        let tag = hmac::sign(&self.nonce_key(), &slot);
        let mut bytes = slot.to_vec();
        bytes.extend_from_slice(&tag.as_ref()[..NONCE_BYTES - slot.len()]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The current slot's nonce or the previous one's, so a nonce handed
    /// out just before a slot ends still works for one lifetime.
    fn is_current_nonce(&self, nonce: &str, now: i64) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if bytes.len() != NONCE_BYTES {
            return false;
        }
        let (slot_bytes, mac) = bytes.split_at(8);
        let Ok(slot_bytes) = <[u8; 8]>::try_from(slot_bytes) else {
            return false;
        };
        let slot = i64::from_be_bytes(slot_bytes);
        let current = self.slot(now);
        if slot != current && slot != current - 1 {
            return false;
        }
        let tag = hmac::sign(&self.nonce_key(), &slot_bytes);
        // Constant-time comparison of the truncated tag.
        aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..mac.len()], mac).is_ok()
    }
}

/// The key a new session's refresh tokens are bound to: a public client's
/// proof key (RFC 9449 §5: its refresh token is otherwise a bearer secret
/// that works from anywhere). A confidential client's refresh tokens stay
/// unbound: its client authentication already sender-constrains them.
pub(crate) fn session_binding(client: &ClientRecord, jkt: Option<&str>) -> Option<String> {
    (client.kind == ClientKind::Public)
        .then(|| jkt.map(str::to_owned))
        .flatten()
}
