//! OpenID Connect RP-Initiated Logout 1.0: validating a logout request
//! (`id_token_hint`, `client_id`, `post_logout_redirect_uri`, `state`).

use std::sync::Arc;

use super::AuthorizeParams;
use crate::domain::error::DomainError;
use crate::domain::types::ClientId;
use crate::domain::Services;
use crate::store::ClientRecord;
use crate::tokens::claims::IdClaims;
use crate::tokens::jwt::{self, ID_TOKEN_TYP};

/// An id_token_hint may be long expired: it only names the client and
/// user (RP-Initiated Logout §2). Ten years.
const HINT_LEEWAY_SECS: i64 = 10 * 365 * 86_400;

/// A logout request that passed `validate_logout`. Every part is optional:
/// without a client there is no redirect, and the logout still happens.
#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    /// The client asking, from `id_token_hint` or `client_id`.
    pub client: Option<Arc<ClientRecord>>,
    /// Where to send the browser afterwards: registered for that client.
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed on the redirect to `post_logout_redirect_uri`; unused without
    /// one.
    pub state: Option<String>,
}

/// Why a logout request is refused: shown on latchkey's page, never
/// redirected (the redirect target is what could not be trusted).
pub type LogoutError = &'static str;

impl Services {
    /// Validates a logout request: the client named by `id_token_hint` or
    /// `client_id` (both, if given, must agree), and a
    /// `post_logout_redirect_uri` only when registered for that client.
    ///
    /// # Errors
    /// A sentence for the error page; store failures as `Err` of the outer
    /// result.
    pub async fn validate_logout(
        &self,
        params: &AuthorizeParams,
    ) -> Result<Result<LogoutRequest, LogoutError>, DomainError> {
        if !params.repeated.is_empty() {
            return Ok(Err("A parameter was given more than once."));
        }
        let hinted = match params.get("id_token_hint") {
            Some(hint) => match self.id_token_audience(hint) {
                Some(aud) => Some(aud),
                None => return Ok(Err("The id_token_hint is not a token latchkey issued.")),
            },
            None => None,
        };
        let named = match params.get("client_id") {
            Some(raw) => match ClientId::parse(raw) {
                Some(id) => Some(id),
                None => return Ok(Err("The client_id is not a registered application.")),
            },
            None => None,
        };
        let client_id = match (hinted, named) {
            (Some(a), Some(b)) if a != b => {
                return Ok(Err("The client_id does not match the id_token_hint."))
            }
            (a, b) => a.or(b),
        };
        let client = match client_id {
            Some(id) => match self.find_client(id).await? {
                Some(c) => Some(c),
                None => return Ok(Err("The client_id is not a registered application.")),
            },
            None => None,
        };
        let post_logout_redirect_uri = match params.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let registered = client
                    .as_ref()
                    .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
                if !registered {
                    return Ok(Err(
                        "The post_logout_redirect_uri is not registered for this application.",
                    ));
                }
                Some(uri.to_owned())
            }
        };
        Ok(Ok(LogoutRequest {
            client,
            post_logout_redirect_uri,
            state: params.get("state").map(str::to_owned),
        }))
    }

    /// The client an id_token of ours was issued to (signature and issuer
    /// checked; expiry ignored within ten years).
    fn id_token_audience(&self, token: &str) -> Option<ClientId> {
        let header = jwt::peek_header(token, ID_TOKEN_TYP).ok()?;
        let now = self.now();
        let key = self.keys.verification_key(&header.kid, header.alg, now)?;
        let claims: IdClaims = jwt::verify(
            token,
            &key.decoding,
            key.algorithm(),
            &self.policy.issuer,
            None,
            now.timestamp(),
            HINT_LEEWAY_SECS,
        )
        .ok()?;
        ClientId::parse(&claims.aud)
    }
}
