//! The refresh_token grant.
//!
//! # Refresh-token rotation
//! A session row keeps `generation`, the number of the newest refresh token
//! (see `tokens::refresh` for how tokens derive from it). Presenting token `g`:
//!
//! 1. One conditional `UPDATE … SET generation = g + 1 WHERE generation = g
//!    AND <live, same client>` rotates it. Of N concurrent presenters of `g`,
//!    the database lets exactly one through.
//! 2. Everyone else reads the session and is classified: another client's
//!    token, revoked, expired (absolute or idle), the *grace replay* (`g` is the
//!    immediate predecessor of the newest generation and the rotation happened
//!    within `refresh_grace_secs` by the database's clock, which stamped the
//!    rotation, so skewed instances agree: the caller gets the same newest token again,
//!    recomputed, and a fresh access token; the chain never forks), or *reuse*
//!    (anything older, or too late), which revokes the whole session and writes
//!    one audit record in the same transaction (RFC 9700 §4.14.2).
//!
//! A session bound to a DPoP key (a public client's, RFC 9449 §5) rotates
//! only with a proof made with that key: the key is part of the rotation's
//! `WHERE`, and a refusal for a missing or other key is decided before grace
//! and reuse, and changes nothing, so a thief without the key can neither
//! rotate nor revoke the session.

use super::*;
use crate::store::AuditKind;
use crate::store::RevokeReason;

impl Services {
    pub(super) async fn refresh_grant(
        &self,
        client: &ClientRecord,
        presented: &str,
        scope: Option<&str>,
        address: Option<&str>,
        jkt: Option<&str>,
    ) -> Result<(TokenPair, RefreshOutcome), DomainError> {
        let refused = DomainError::RefreshRefused;
        // Garbage and forgeries are refused here, without a store query.
        let parsed = self
            .refresh_secret
            .parse(presented)
            .map_err(|_| refused(RefreshFailure::Unknown))?;
        let now = self.now();
        // A narrower scope is checked before the token is used up, so a bad
        // request changes nothing.
        let narrowed = match scope {
            Some(raw) => Some(self.narrow_scope(parsed.sid, raw).await?),
            None => None,
        };
        let idle_cutoff = self.idle_cutoff(now);
        if let Some(session) = self
            .store
            .rotate_session(
                parsed.sid,
                client.id,
                parsed.generation,
                jkt,
                now,
                idle_cutoff,
            )
            .await?
        {
            let scope = narrowed.unwrap_or_else(|| session.scope.clone());
            let tokens = self
                .refreshed_tokens(client, &session, &scope, jkt, now)
                .await?;
            return Ok((tokens, RefreshOutcome::Rotated));
        }
        let Some(RotatedSession {
            session,
            since_rotation,
        }) = self.store.find_rotated_session(parsed.sid).await?
        else {
            return Err(refused(RefreshFailure::Unknown));
        };
        if session.client_id != client.id {
            return Err(refused(RefreshFailure::WrongClient));
        }
        if session.dpop_jkt.is_some() && session.dpop_jkt.as_deref() != jkt {
            return Err(refused(RefreshFailure::DpopKeyMismatch));
        }
        if session.revoked_at.is_some() {
            return Err(refused(RefreshFailure::Revoked));
        }
        if session.expires_at <= now || session.last_used_at <= idle_cutoff {
            return Err(refused(RefreshFailure::Expired));
        }
        let grace = self.policy.tokens.refresh_grace;
        if is_grace_replay(parsed.generation, &session, since_rotation, grace) {
            let scope = narrowed.unwrap_or_else(|| session.scope.clone());
            let tokens = self
                .refreshed_tokens(client, &session, &scope, jkt, now)
                .await?;
            return Ok((tokens, RefreshOutcome::GraceReplay));
        }
        if parsed.generation < session.generation {
            let ev = AuditEvent::new(AuditKind::RefreshTokenReused, now)
                .user(session.user_id)
                .client(client.id)
                .session(session.id)
                .reason(format!(
                    "generation {} presented; newest is {}",
                    parsed.generation, session.generation
                ))
                .address(address);
            if self
                .store
                .revoke_session(session.id, RevokeReason::RefreshTokenReuse, &ev)
                .await?
            {
                trace_audit(&ev);
            }
            return Err(refused(RefreshFailure::Reused));
        }
        Err(refused(RefreshFailure::Unknown))
    }

    pub(super) async fn narrow_scope(
        &self,
        sid: SessionId,
        raw: &str,
    ) -> Result<Scope, DomainError> {
        let requested = Scope::parse(raw).ok_or(DomainError::InvalidScope)?;
        let session = self
            .store
            .find_session(sid)
            .await?
            .ok_or(DomainError::RefreshRefused(RefreshFailure::Unknown))?;
        let original = session.scope;
        if requested.is_empty() {
            return Ok(original);
        }
        if !requested.is_subset_of(&original) {
            return Err(DomainError::InvalidScope);
        }
        Ok(requested)
    }

    pub(super) async fn refreshed_tokens(
        &self,
        client: &ClientRecord,
        session: &SessionRecord,
        scope: &Scope,
        jkt: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, DomainError> {
        // OIDC Core §12.2: the id_token may be left out of a refresh
        // response; without it, its claims need no user lookup either.
        let with_id_token = scope.has("openid") && self.policy.tokens.id_token_on_refresh;
        let email = if with_id_token && scope.has("email") {
            self.store
                .find_user(session.user_id)
                .await?
                .map(|u| (u.email, u.email_verified))
        } else {
            None
        };
        let email = email.as_ref().map(|(e, verified)| (e.as_str(), *verified));
        self.user_tokens(client, session, scope, email, with_id_token, jkt, now)
            .await
    }
}

/// The grace rule: only the immediate predecessor of the newest token, and
/// only within `grace` of the rotation that replaced it, `since_rotation`
/// being measured by the database's clock (instances' clocks may disagree by
/// more than the grace period). A grace of zero turns replay off: every
/// second use is reuse.
pub fn is_grace_replay(
    generation: i64,
    session: &SessionRecord,
    since_rotation: Duration,
    grace: Duration,
) -> bool {
    grace > Duration::zero() && generation + 1 == session.generation && since_rotation <= grace
}
