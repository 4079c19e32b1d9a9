//! Issuing tokens: the access token, the id_token, and the refresh token of
//! a session at its newest generation.

use super::*;

impl Services {
    /// Access token, refresh token (when the client may refresh) and, with
    /// `with_id_token` (the caller decides: `openid` in the scope, and for a
    /// refresh the `tokens.id_token_on_refresh` setting), an id_token for a
    /// user's session at its newest generation. With `jkt` (the request
    /// carried a valid DPoP proof) the access token is bound to that key.
    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is one fact of the grant; a struct would only rename them"
    )]
    pub(super) async fn user_tokens(
        &self,
        client: &ClientRecord,
        session: &SessionRecord,
        scope: &Scope,
        email: Option<(&str, bool)>,
        with_id_token: bool,
        jkt: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, DomainError> {
        self.user_tokens_with_nonce(client, session, scope, email, with_id_token, None, jkt, now)
            .await
    }

    /// As `user_tokens`, with the authorization request's `nonce` (and
    /// `at_hash`) in the id_token.
    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is one fact of the grant; a struct would only rename them"
    )]
    pub(crate) async fn user_tokens_with_nonce(
        &self,
        client: &ClientRecord,
        session: &SessionRecord,
        scope: &Scope,
        email: Option<(&str, bool)>,
        with_id_token: bool,
        nonce: Option<&str>,
        jkt: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, DomainError> {
        let (access_token, expires_in) = self
            .issue_access_token(
                client,
                &session.user_id.to_string(),
                scope,
                Some(session.id),
                jkt,
                now,
            )
            .await?;
        let refresh_token = allows(client, GrantType::RefreshToken)
            .then(|| self.refresh_secret.token(session.id, session.generation));
        let refresh_expires_in = refresh_token.as_ref().map(|_| {
            // Rounded up to whole seconds: the store keeps milliseconds, so
            // a session just read back starts a fraction of a second before
            // `now`, and flooring would shave a second off the cookie's
            // Max-Age (the server, not the cookie, enforces the end).
            let remaining = (self.session_end(session) - now).num_milliseconds();
            (remaining + 999).div_euclid(1000).max(0)
        });
        let id_token = if with_id_token {
            let bound = IdBinding {
                nonce,
                access_token: &access_token,
            };
            Some(
                self.issue_id_token(client, session.user_id, session, scope, email, bound, now)
                    .await?,
            )
        } else {
            None
        };
        Ok(TokenPair {
            access_token,
            expires_in,
            refresh_token,
            refresh_expires_in,
            scope: scope.to_string(),
            id_token,
        })
    }

    /// Signs an RFC 9068 access token with the key active at `now`, bound
    /// to the DPoP key `jkt` when there is one (RFC 9449 §6.1).
    ///
    /// # Errors
    /// No active key, or signing failed.
    pub async fn issue_access_token(
        &self,
        client: &ClientRecord,
        sub: &str,
        scope: &Scope,
        sid: Option<SessionId>,
        jkt: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), DomainError> {
        let ttl = self.policy.tokens.access_token_ttl.num_seconds();
        let claims = AccessClaims {
            iss: self.policy.issuer.clone(),
            sub: sub.to_owned(),
            aud: self.audience_for(client).to_owned(),
            exp: now.timestamp() + ttl,
            iat: now.timestamp(),
            jti: Uuid::new_v4().to_string(),
            client_id: client.id.to_string(),
            scope: scope.to_string(),
            sid: sid.map(|s| s.to_string()),
            nbf: None,
            cnf: jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
        };
        let key = self.keys.signing_key(now)?;
        let token = self.signer.sign(key, ACCESS_TOKEN_TYP, claims).await?;
        Ok((token, ttl))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is one fact of the grant; a struct would only rename them"
    )]
    pub(super) async fn issue_id_token(
        &self,
        client: &ClientRecord,
        user: UserId,
        session: &SessionRecord,
        scope: &Scope,
        email: Option<(&str, bool)>,
        bound: IdBinding<'_>,
        now: DateTime<Utc>,
    ) -> Result<String, DomainError> {
        let with_email = scope.has("email");
        let key = self.keys.signing_key(now)?;
        let algorithm = key.algorithm();
        let claims = IdClaims {
            iss: self.policy.issuer.clone(),
            sub: user.to_string(),
            aud: client.id.to_string(),
            exp: now.timestamp() + self.policy.tokens.access_token_ttl.num_seconds(),
            iat: now.timestamp(),
            auth_time: session.created_at.timestamp(),
            sid: session.id.to_string(),
            email: email.filter(|_| with_email).map(|(e, _)| e.to_owned()),
            email_verified: email.filter(|_| with_email).map(|(_, verified)| verified),
            nonce: bound.nonce.map(str::to_owned),
            at_hash: bound.nonce.map(|_| at_hash(bound.access_token, algorithm)),
        };
        Ok(self.signer.sign(key, ID_TOKEN_TYP, claims).await?)
    }
}

/// What an id_token is bound to besides the session: the authorization
/// request's `nonce` and the access token issued with it.
pub(super) struct IdBinding<'a> {
    pub(super) nonce: Option<&'a str>,
    pub(super) access_token: &'a str,
}

/// OIDC Core §3.1.3.8: base64url of the left half of the access token's
/// hash under the id_token's `alg`: SHA-256 for RS256 and ES256, SHA-512 for
/// EdDSA over Ed25519 (the OpenID Foundation's reading for `EdDSA`).
fn at_hash(access_token: &str, algorithm: crate::tokens::keypair::Algorithm) -> String {
    use crate::tokens::keypair::Algorithm;
    use aws_lc_rs::digest;
    use base64::Engine;
    let d = match algorithm {
        Algorithm::Rs256 | Algorithm::Es256 => {
            digest::digest(&digest::SHA256, access_token.as_bytes())
        }
        Algorithm::EdDsa => digest::digest(&digest::SHA512, access_token.as_bytes()),
    };
    let half = &d.as_ref()[..d.as_ref().len() / 2];
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half)
}
