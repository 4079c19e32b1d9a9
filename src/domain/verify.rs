//! The one verification path for access tokens, shared by introspection,
//! userinfo and the account API: a published `kid` whose key has the very
//! algorithm the header names (each key verifies with its own only), `typ`
//! `at+jwt`, `iss`, `aud`, `exp`, `nbf` and `iat` with leeway, then the
//! session (not revoked, user not disabled) in one indexed lookup.

use super::error::DomainError;
use super::types::{ClientId, SessionId, UserId};
use super::Services;
use crate::tokens::claims::AccessClaims;
use crate::tokens::jwt::{self, JwtError, ACCESS_TOKEN_TYP};

/// An access token that passed every check of `verify_access_token`, its
/// session's status included, when it was checked.
#[derive(Debug, Clone)]
pub struct VerifiedAccess {
    pub claims: AccessClaims,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The user, for user tokens (absent for client_credentials).
    pub user_id: Option<UserId>,
    /// The session, for user tokens.
    pub session_id: Option<SessionId>,
}

impl VerifiedAccess {
    /// Whether the token's scope (RFC 6749 §3.3: space-separated, order
    /// free) includes `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.scope.split(' ').any(|s| s == scope)
    }
}

/// What `/userinfo` tells a token's holder (OpenID Connect Core §5.3): the
/// subject always, the address only with scope `email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user's opaque id, as in the token's `sub`.
    pub sub: UserId,
    /// The address and whether it is verified, with scope `email`.
    pub email: Option<(String, bool)>,
}

impl Services {
    /// The claims `/userinfo` returns for a verified token: only for user
    /// tokens with scope `openid`, and only while the user still exists.
    ///
    /// # Errors
    /// `InvalidToken` for a client's own token; `InsufficientScope` without
    /// `openid`; `TokenRevoked` when the user is gone; store failures.
    pub async fn userinfo(&self, access: &VerifiedAccess) -> Result<UserInfo, DomainError> {
        let user_id = access
            .user_id
            .ok_or(DomainError::InvalidToken(JwtError::Invalid))?;
        if !access.has_scope("openid") {
            return Err(DomainError::InsufficientScope(
                "the access token lacks the openid scope",
            ));
        }
        let user = self
            .store
            .find_user(user_id)
            .await?
            .ok_or(DomainError::TokenRevoked)?;
        Ok(UserInfo {
            sub: user.id,
            email: access
                .has_scope("email")
                .then_some((user.email, user.email_verified)),
        })
    }

    /// Verifies an access token for one of latchkey's own endpoints (the
    /// account API, `/v1/logout`, `/userinfo`): everything
    /// `verify_access_token` checks, and that the token is for latchkey's own
    /// audience (`tokens.default_audience`), not for some other API (RFC 9068
    /// §4). A token a resource server received cannot be replayed here.
    ///
    /// # Errors
    /// As `verify_access_token`; `InvalidToken` for another audience.
    pub async fn verify_own_access_token(
        &self,
        token: &str,
    ) -> Result<VerifiedAccess, DomainError> {
        let access = self.verify_access_token(token).await?;
        self.require_own_audience(access)
    }

    /// `access` when it is for latchkey's own audience.
    ///
    /// # Errors
    /// `InvalidToken` for another audience.
    pub fn require_own_audience(
        &self,
        access: VerifiedAccess,
    ) -> Result<VerifiedAccess, DomainError> {
        if access.claims.aud == self.policy.tokens.default_audience {
            Ok(access)
        } else {
            Err(JwtError::Invalid.into())
        }
    }

    /// Verifies an access token for whichever audience it was issued to
    /// (the client's, or the default): every check listed at the top of
    /// this module, the session lookup included. Introspection uses it as
    /// it is; latchkey's own endpoints go through `verify_own_access_token`.
    ///
    /// # Errors
    /// `InvalidToken` for anything wrong with the token itself,
    /// `TokenRevoked` for a revoked session or a disabled user; store
    /// failures.
    pub async fn verify_access_token(&self, token: &str) -> Result<VerifiedAccess, DomainError> {
        let header = jwt::peek_header(token, ACCESS_TOKEN_TYP)?;
        let now = self.now();
        let key = self
            .keys
            .verification_key(&header.kid, header.alg, now)
            .ok_or(JwtError::UnknownKey)?;
        let claims: AccessClaims = jwt::verify(
            token,
            &key.decoding,
            key.algorithm(),
            &self.policy.issuer,
            None,
            now.timestamp(),
            self.policy.tokens.leeway.num_seconds(),
        )?;
        let client_id = ClientId::parse(&claims.client_id).ok_or(JwtError::Invalid)?;
        // The audience must be the one latchkey issues to this client: a
        // token minted for another audience is not accepted here.
        let client = self
            .find_client(client_id)
            .await?
            .ok_or(JwtError::Invalid)?;
        if claims.aud != self.audience_for(&client) {
            return Err(JwtError::Invalid.into());
        }
        let (user_id, session_id) = match &claims.sid {
            Some(sid) => {
                let sid = SessionId::parse(sid).ok_or(JwtError::Invalid)?;
                let user = UserId::parse(&claims.sub).ok_or(JwtError::Invalid)?;
                match self.store.session_status(sid).await? {
                    Some(s) if !s.revoked && !s.user_disabled => (Some(user), Some(sid)),
                    _ => return Err(DomainError::TokenRevoked),
                }
            }
            None => (None, None),
        };
        Ok(VerifiedAccess {
            claims,
            client_id,
            user_id,
            session_id,
        })
    }
}
