//! The discovery documents: OpenID Connect Discovery 1.0 and RFC 8414 share
//! one body, rendered once at start-up.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;

use super::AppState;
use crate::config::Settings;
use crate::tokens::keypair::Algorithm;

/// What `private_key_jwt` assertions may be signed with (RFC 8414 §2).
const ASSERTION_ALGS: [&str; 4] = latchkey_verify::jose::SIGNING_ALGS;

/// Renders the metadata document for `settings`.
pub fn render(settings: &Settings) -> Bytes {
    let iss = settings.issuer();
    let doc = serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "end_session_endpoint": format!("{iss}/logout"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "signup_endpoint": format!("{iss}/v1/users"),
        "account_sessions_endpoint": format!("{iss}/v1/account/sessions"),
        "account_password_endpoint": format!("{iss}/v1/account/password"),
        "logout_endpoint": format!("{iss}/v1/logout"),
        "email_verification_endpoint": format!("{iss}/v1/account/email/verify"),
        "password_reset_endpoint": format!("{iss}/v1/account/password/reset"),
        "password_reset_confirm_endpoint": format!("{iss}/v1/account/password/reset/confirm"),
        "grant_types_supported": ["authorization_code", "password", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algorithms(settings),
        // `client_secret_jwt` is not offered: an HMAC keyed with a shared
        // secret adds nothing over sending that secret over TLS.
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "dpop_signing_alg_values_supported": crate::domain::dpop::SIGNING_ALGS,
        "scopes_supported": ["openid", "email"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "sid", "nonce", "at_hash", "email", "email_verified"],
    });
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}

/// The algorithm new keys get, then RS256 when that is another: OpenID
/// Connect Discovery 1.0 §3 requires RS256 in the list, and during a move
/// between algorithms RS256 keys still sign until the new key activates.
fn signing_algorithms(settings: &Settings) -> Vec<&'static str> {
    let configured = settings.key_spec().algorithm;
    let mut algs = vec![configured.name()];
    if configured != Algorithm::Rs256 {
        algs.push(Algorithm::Rs256.name());
    }
    algs
}

/// Both metadata paths (OpenID and RFC 8414) serve the one document rendered
/// at start-up, cacheable for an hour.
pub async fn get_discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .content_type("application/json")
        .body(state.discovery.clone())
}
