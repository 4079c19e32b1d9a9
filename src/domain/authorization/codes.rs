//! Redeeming an authorization code at the token endpoint (RFC 6749 §4.1.3,
//! RFC 7636 §4.6): single use, 60 seconds, bound to the client, the redirect
//! URI, the PKCE challenge, the user and the scope. A second redemption
//! fails and revokes the session the first one started (RFC 6749 §4.1.2).

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::dpop::{session_binding, DpopFailure};
use crate::domain::error::DomainError;
use crate::domain::types::{Scope, SessionId};
use crate::domain::Services;
use crate::store::AuditKind;
use crate::store::RevokeReason;
use crate::store::{AuditEvent, AuthorizationCodeRecord, ClientRecord, SessionRecord};
use crate::tokens::TokenPair;

/// The stored form of a code (or a browser-session secret): SHA-256, hex.
/// The secret has 256 bits, so a plain digest cannot be inverted and a
/// database dump cannot redeem anything.
pub fn code_digest(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`, compared in
/// constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    if !is_valid_verifier(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
        .is_ok()
}

const BAD_CODE: DomainError =
    DomainError::InvalidGrant("the authorization code is invalid, expired or already used");

impl Services {
    /// `grant_type=authorization_code` for an authenticated client.
    ///
    /// # Errors
    /// `InvalidGrant` for every refusal (RFC 6749 §5.2); store failures.
    pub(crate) async fn authorization_code_grant(
        &self,
        client: &ClientRecord,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        address: Option<&str>,
        jkt: Option<&str>,
    ) -> Result<TokenPair, DomainError> {
        let hash = code_digest(code);
        let record = self
            .store
            .find_authorization_code(&hash)
            .await?
            .ok_or(BAD_CODE)?;
        if record.client_id != client.id {
            return Err(BAD_CODE);
        }
        if record.used_at.is_some() {
            self.revoke_code_session(&record, address).await?;
            return Err(BAD_CODE);
        }
        let now = self.now();
        if record.expires_at <= now {
            return Err(BAD_CODE);
        }
        // RFC 9449 §10: a code bound to a key is redeemed with that key
        // alone; refused before anything is used up, so the rightful client
        // can still redeem it.
        if let Some(bound) = &record.dpop_jkt {
            if jkt != Some(bound.as_str()) {
                return Err(DomainError::DpopRefused(DpopFailure::CodeBoundToAnotherKey));
            }
        }
        // RFC 6749 §4.1.3: the same redirect_uri, exactly.
        if redirect_uri != Some(record.redirect_uri.as_str()) {
            return Err(DomainError::InvalidGrant(
                "redirect_uri does not match the authorization request",
            ));
        }
        let verifier = verifier.ok_or(DomainError::InvalidRequest(
            "code_verifier is required (PKCE)",
        ))?;
        if !pkce_matches(verifier, &record.code_challenge) {
            return Err(DomainError::InvalidGrant(
                "the PKCE code_verifier does not match",
            ));
        }
        let user = self
            .store
            .find_user(record.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(BAD_CODE)?;
        let scope = Scope::parse(&record.scope).ok_or(BAD_CODE)?;
        let session = self.code_session(client, &record, scope.clone(), jkt, now);
        // The session exists before the code is marked used, so a racing
        // second redemption that loses always finds it to revoke. It starts
        // only while the credentials the user logged in with are current (a
        // password change since the login voids the code).
        if !self
            .store
            .start_session(&session, record.credentials_version)
            .await?
        {
            return Err(BAD_CODE);
        }
        if !self
            .store
            .consume_authorization_code(&hash, session.id, now)
            .await?
        {
            self.revoke_lost_race(&session, &hash, address).await?;
            return Err(BAD_CODE);
        }
        let ev = AuditEvent::new(AuditKind::LoginSucceeded, now)
            .user(user.id)
            .client(client.id)
            .session(session.id)
            .address(address)
            .reason("authorization_code");
        self.insert_audit(&ev).await?;
        self.user_tokens_with_nonce(
            client,
            &session,
            &scope,
            Some((&user.email, user.email_verified)),
            scope.has("openid"),
            record.nonce.as_deref(),
            jkt,
            now,
        )
        .await
    }

    fn code_session(
        &self,
        client: &ClientRecord,
        record: &AuthorizationCodeRecord,
        scope: Scope,
        jkt: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> SessionRecord {
        SessionRecord {
            id: SessionId::new_random(),
            user_id: record.user_id,
            client_id: client.id,
            scope,
            // `created_at` is the session's auth_time: when the password was
            // entered at latchkey's login page.
            created_at: record.auth_time,
            last_used_at: now,
            expires_at: now + self.policy.sessions.absolute_ttl,
            generation: 0,
            rotated_at: now,
            revoked_at: None,
            revoked_reason: None,
            dpop_jkt: session_binding(client, jkt),
        }
    }

    /// A replayed code: the tokens its first redemption got are revoked.
    async fn revoke_code_session(
        &self,
        record: &AuthorizationCodeRecord,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        let Some(sid) = record.session_id else {
            return Ok(());
        };
        let ev = AuditEvent::new(AuditKind::AuthorizationCodeReused, self.now())
            .user(record.user_id)
            .client(record.client_id)
            .session(sid)
            .address(address)
            .reason("authorization code redeemed twice");
        self.store
            .revoke_session(sid, RevokeReason::AuthorizationCodeReused, &ev)
            .await?;
        Ok(())
    }

    /// Lost the race to redeem: our session goes, and so does the winner's.
    async fn revoke_lost_race(
        &self,
        ours: &SessionRecord,
        hash: &str,
        address: Option<&str>,
    ) -> Result<(), DomainError> {
        let ev = AuditEvent::new(AuditKind::SessionRevoked, self.now())
            .user(ours.user_id)
            .client(ours.client_id)
            .session(ours.id)
            .reason("authorization code redeemed twice");
        self.store
            .revoke_session(ours.id, RevokeReason::AuthorizationCodeReused, &ev)
            .await?;
        if let Some(record) = self.store.find_authorization_code(hash).await? {
            self.revoke_code_session(&record, address).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn digests_are_hex_sha256() {
        assert_eq!(code_digest("abc").len(), 64);
        assert_ne!(code_digest("abc"), code_digest("abd"));
    }
}
