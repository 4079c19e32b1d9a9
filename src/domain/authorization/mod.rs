//! The authorization code flow (RFC 6749 §4.1, OpenID Connect Core §3.1):
//! validating an authorization request, deciding between login, consent and
//! a code, and issuing the code. Redirect URI rules are in `redirect`,
//! browser sessions in `browser`, consent in `consent`, redemption at the
//! token endpoint in `codes`.

pub mod browser;
pub mod codes;
pub mod consent;
pub mod logout;
pub mod redirect;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use self::redirect::redirect_matches;
use super::clients::allows;
use super::error::DomainError;
use super::types::{random_token, ClientId, GrantType, Scope};
use super::Services;
use crate::store::{
    AuthorizationCodeRecord, BrowserSessionRecord, ClientRecord, StoreError, UserRecord,
};

/// How long a code may be redeemed (RFC 6749 §4.1.2 recommends at most ten
/// minutes; a client redeems at once).
pub const CODE_TTL_SECS: i64 = 60;
/// Longest `state`, `nonce` and `login_hint` accepted, in bytes.
const MAX_PARAM_BYTES: usize = 512;

/// The `prompt` parameter (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Never show a page; fail instead.
    pub none: bool,
    /// Ask for the password even with a live browser session.
    pub login: bool,
    /// Ask for consent even when it was given before.
    pub consent: bool,
}

/// An authorization request that passed `validate_authorization`: every
/// value is checked and bounded, and any later error may go back to
/// `redirect_uri`.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// Enabled, and allowed the authorization_code grant.
    pub client: Arc<ClientRecord>,
    /// The presented redirect URI (it matched a registered one).
    pub redirect_uri: String,
    /// The scope asked for (or the client's whole scope).
    pub scope: Scope,
    /// Echoed back to the client with the code or the error.
    pub state: Option<String>,
    /// Echoed in the id_token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// Pre-fills the email field.
    pub login_hint: Option<String>,
    /// `dpop_jkt` (RFC 9449 §10): the thumbprint of the DPoP key that alone
    /// may redeem the code.
    pub dpop_jkt: Option<String>,
}

/// An error to send back to the client's redirect URI (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone)]
pub struct ErrorRedirect {
    /// The request's redirect URI, already matched to a registered one.
    pub redirect_uri: String,
    /// The RFC 6749 error code.
    pub error: &'static str,
    /// Sent as `error_description`: a fixed sentence, never anything taken
    /// from the request.
    pub description: &'static str,
    /// The request's `state`.
    pub state: Option<String>,
}

/// Why an authorization request cannot go on.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI could not be trusted: shown on latchkey's
    /// error page, never redirected (RFC 6749 §4.1.2.1).
    Page(&'static str),
    /// Sent back to the client, whose redirect URI is known good by then.
    Redirect(ErrorRedirect),
    /// The server's own failure (the store, randomness), not the request's.
    Domain(DomainError),
}

impl From<DomainError> for AuthorizeError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

/// What the browser sees next.
#[derive(Debug)]
pub enum Next {
    /// The login page: no live browser session, one older than `max_age`,
    /// `prompt=login`, or a session whose user is gone or disabled.
    Login,
    /// The consent page, for this user.
    Consent(UserRecord, BrowserSessionRecord),
    /// Back to the client with a code (the full `Location`).
    Redirect(String),
}

/// The raw parameters of an authorization request: each name once, with
/// the names that were repeated.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    /// Every name with its first value; a repeated name is also listed in
    /// `repeated`.
    pub values: HashMap<String, String>,
    /// Names given more than once (RFC 6749 §3.1: must not repeat).
    pub repeated: Vec<String>,
}

impl AuthorizeParams {
    /// Collects name/value pairs, keeping the first value of a name given
    /// more than once.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut p = Self::default();
        for (k, v) in pairs {
            match p.values.entry(k) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    if !p.repeated.contains(e.key()) {
                        p.repeated.push(e.key().clone());
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(v);
                }
            }
        }
        p
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// The request again, as a query string without `prompt` and
    /// `max_age` (already satisfied once the user has logged in), for the
    /// login and consent forms to carry back.
    pub fn to_query_without_prompt(&self) -> String {
        let mut names: Vec<&String> = self
            .values
            .keys()
            .filter(|k| !matches!(k.as_str(), "prompt" | "max_age"))
            .collect();
        names.sort();
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for n in names {
            s.append_pair(n, &self.values[n]);
        }
        s.finish()
    }
}

/// A code or consent the store refused because its client (or user) was
/// deleted after the request was validated: `NotFound`, which the pages show
/// as an application no longer registered, not as a server fault.
fn client_gone(e: StoreError) -> DomainError {
    match e {
        StoreError::NotFound => DomainError::NotFound,
        other => other.into(),
    }
}

/// Appends `params` to a redirect URI's query (RFC 6749 §4.1.2: keep the
/// registered query, add ours).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", s.finish())
}

impl ErrorRedirect {
    /// The `Location` of this error (with `iss`, RFC 9207).
    pub fn location(&self, issuer: &str) -> String {
        let mut p = vec![
            ("error", self.error),
            ("error_description", self.description),
        ];
        if let Some(st) = &self.state {
            p.push(("state", st));
        }
        p.push(("iss", issuer));
        with_query(&self.redirect_uri, &p)
    }
}

fn bounded(v: Option<&str>) -> Result<Option<String>, &'static str> {
    match v {
        Some(s) if s.len() > MAX_PARAM_BYTES => Err("a parameter is too long"),
        Some(s) => Ok(Some(s.to_owned())),
        None => Ok(None),
    }
}

/// A SHA-256 value in base64url without padding: 43 characters. An S256
/// PKCE challenge (RFC 7636 §4.2) and an RFC 7638 JWK thumbprint are both.
fn is_sha256_base64url(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_prompt(raw: Option<&str>) -> Result<Prompt, &'static str> {
    let mut p = Prompt::default();
    for v in raw.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => p.none = true,
            "login" => p.login = true,
            "consent" => p.consent = true,
            _ => return Err("prompt must be none, login or consent"),
        }
    }
    if p.none && (p.login || p.consent) {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(p)
}

impl Services {
    /// Validates an authorization request. The client and the redirect URI
    /// come first: until both are known good, errors are `Page`; after,
    /// `Redirect`.
    ///
    /// # Errors
    /// See `AuthorizeError`.
    pub async fn validate_authorization(
        &self,
        params: &AuthorizeParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let (client, redirect_uri) = self.trusted_client_and_redirect(params).await?;
        // A `state` too long to echo is refused without echoing it.
        let checked_state = bounded(params.get("state"));
        let echo = checked_state.clone().ok().flatten();
        let fail = |error: &'static str, description: &'static str| {
            AuthorizeError::Redirect(ErrorRedirect {
                redirect_uri: redirect_uri.clone(),
                error,
                description,
                state: echo.clone(),
            })
        };
        let state = checked_state.map_err(|d| fail("invalid_request", d))?;
        if !params.repeated.is_empty() {
            return Err(fail(
                "invalid_request",
                "a parameter was given more than once",
            ));
        }
        if params.get("request").is_some() {
            return Err(fail(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if params.get("request_uri").is_some() {
            return Err(fail(
                "request_uri_not_supported",
                "request_uri is not supported",
            ));
        }
        match params.get("response_type") {
            None => return Err(fail("invalid_request", "response_type is required")),
            Some("code") => {}
            Some(_) => {
                return Err(fail(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ))
            }
        }
        if let Some(mode) = params.get("response_mode") {
            if mode != "query" {
                return Err(fail(
                    "invalid_request",
                    "only response_mode=query is supported",
                ));
            }
        }
        if !allows(&client, GrantType::AuthorizationCode) {
            return Err(fail(
                "unauthorized_client",
                "the client may not use the authorization code flow",
            ));
        }
        let scope = super::grants::granted_scope(&client, params.get("scope")).map_err(|_| {
            fail(
                "invalid_scope",
                "the requested scope is invalid or not allowed",
            )
        })?;
        // RFC 9700 §2.1.1: PKCE for every client, S256 only.
        let code_challenge = match (
            params.get("code_challenge"),
            params.get("code_challenge_method"),
        ) {
            (None, _) => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge is required (PKCE, S256)",
                ))
            }
            (Some(_), Some(m)) if m != "S256" => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ))
            }
            (Some(_), None) => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ))
            }
            (Some(c), Some(_)) if !is_sha256_base64url(c) => {
                return Err(fail("invalid_request", "code_challenge is malformed"))
            }
            (Some(c), Some(_)) => c.to_owned(),
        };
        let prompt = parse_prompt(params.get("prompt")).map_err(|d| fail("invalid_request", d))?;
        let max_age = match params.get("max_age") {
            None => None,
            Some(v) => Some(
                v.parse::<i64>()
                    .ok()
                    .filter(|n| (0..=10 * 365 * 86_400).contains(n))
                    .ok_or_else(|| {
                        fail("invalid_request", "max_age must be a number of seconds")
                    })?,
            ),
        };
        let nonce = bounded(params.get("nonce")).map_err(|d| fail("invalid_request", d))?;
        let login_hint =
            bounded(params.get("login_hint")).map_err(|d| fail("invalid_request", d))?;
        let dpop_jkt = match params.get("dpop_jkt") {
            None => None,
            Some(jkt) if is_sha256_base64url(jkt) => Some(jkt.to_owned()),
            Some(_) => {
                return Err(fail(
                    "invalid_request",
                    "dpop_jkt must be an RFC 7638 SHA-256 JWK thumbprint",
                ))
            }
        };
        Ok(AuthorizationRequest {
            client,
            redirect_uri,
            scope,
            state,
            nonce,
            code_challenge,
            prompt,
            max_age,
            login_hint,
            dpop_jkt,
        })
    }

    async fn trusted_client_and_redirect(
        &self,
        params: &AuthorizeParams,
    ) -> Result<(Arc<ClientRecord>, String), AuthorizeError> {
        if params.is_repeated("client_id") || params.is_repeated("redirect_uri") {
            return Err(AuthorizeError::Page(
                "client_id or redirect_uri was given more than once.",
            ));
        }
        let client_id = params.get("client_id").ok_or(AuthorizeError::Page(
            "The request names no client (client_id is missing).",
        ))?;
        let client = match ClientId::parse(client_id) {
            Some(id) => self.find_client(id).await?,
            None => None,
        }
        .ok_or(AuthorizeError::Page(
            "The application that sent you here is not registered.",
        ))?;
        let redirect_uri = params.get("redirect_uri").ok_or(AuthorizeError::Page(
            "The request has no redirect_uri, so there is nowhere to send you back to.",
        ))?;
        if !client
            .redirect_uris
            .iter()
            .any(|r| redirect_matches(r, redirect_uri))
        {
            return Err(AuthorizeError::Page(
                "The redirect_uri is not registered for this application.",
            ));
        }
        Ok((client, redirect_uri.to_owned()))
    }

    /// What to do with a valid request, given the browser's session (if
    /// live): log in, ask for consent, or redirect with a code or an error.
    ///
    /// # Errors
    /// Store failures; `prompt=none` answers as `Redirect` errors.
    pub async fn next_step(
        &self,
        req: &AuthorizationRequest,
        session: Option<BrowserSessionRecord>,
        just_logged_in: bool,
    ) -> Result<Next, AuthorizeError> {
        let now = self.now();
        let session = session.filter(|s| just_logged_in || !self.needs_fresh_login(req, s, now));
        let Some(session) = session else {
            if req.prompt.none {
                return Err(self.redirect_error(req, "login_required", "the user must log in"));
            }
            return Ok(Next::Login);
        };
        let user = self
            .store
            .find_user(session.user_id)
            .await
            .map_err(DomainError::from)?
            .filter(|u| !u.disabled);
        let Some(user) = user else {
            return Ok(Next::Login);
        };
        if !self.has_consent(req, &user).await? {
            if req.prompt.none {
                return Err(self.redirect_error(req, "consent_required", "the user must consent"));
            }
            return Ok(Next::Consent(user, session));
        }
        let location = self.issue_code(req, &user, &session).await?;
        Ok(Next::Redirect(location))
    }

    /// `prompt=login`, or `max_age` exceeded since the last password entry.
    fn needs_fresh_login(
        &self,
        req: &AuthorizationRequest,
        s: &BrowserSessionRecord,
        now: DateTime<Utc>,
    ) -> bool {
        req.prompt.login
            || req
                .max_age
                .is_some_and(|max| now - s.auth_time > Duration::seconds(max))
    }

    /// An error for the client's redirect URI.
    pub fn redirect_error(
        &self,
        req: &AuthorizationRequest,
        error: &'static str,
        description: &'static str,
    ) -> AuthorizeError {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: req.redirect_uri.clone(),
            error,
            description,
            state: req.state.clone(),
        })
    }

    /// Issues a code bound to everything the token request must repeat, and
    /// returns the `Location` carrying it (with `state` and `iss`, RFC 9207).
    ///
    /// # Errors
    /// Store failures; no randomness.
    pub async fn issue_code(
        &self,
        req: &AuthorizationRequest,
        user: &UserRecord,
        session: &BrowserSessionRecord,
    ) -> Result<String, DomainError> {
        // 256 bits: far beyond RFC 6749 §10.10's guessing bound.
        let code = random_token(32)?;
        let now = self.now();
        let record = AuthorizationCodeRecord {
            code_hash: codes::code_digest(&code),
            client_id: req.client.id,
            user_id: user.id,
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            nonce: req.nonce.clone(),
            scope: req.scope.to_string(),
            auth_time: session.auth_time,
            credentials_version: session.credentials_version,
            expires_at: now + Duration::seconds(CODE_TTL_SECS),
            used_at: None,
            session_id: None,
            dpop_jkt: req.dpop_jkt.clone(),
        };
        self.store
            .insert_authorization_code(&record)
            .await
            .map_err(client_gone)?;
        let mut p = vec![("code", code.as_str())];
        if let Some(st) = &req.state {
            p.push(("state", st));
        }
        p.push(("iss", &self.policy.issuer));
        Ok(with_query(&req.redirect_uri, &p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_values_parse_and_none_stands_alone() {
        assert_eq!(parse_prompt(None), Ok(Prompt::default()));
        let p = parse_prompt(Some("login consent")).expect("ok");
        assert!(p.login && p.consent && !p.none);
        assert!(parse_prompt(Some("none login")).is_err());
        assert!(parse_prompt(Some("select_account")).is_err());
    }

    #[test]
    fn challenges_are_43_base64url_characters() {
        assert!(is_sha256_base64url(&"a".repeat(43)));
        assert!(!is_sha256_base64url(&"a".repeat(42)));
        assert!(!is_sha256_base64url(&format!("{}=", "a".repeat(42))));
    }

    #[test]
    fn redirect_queries_keep_the_registered_query() {
        assert_eq!(
            with_query(
                "https://a.example/cb?x=1",
                &[("code", "c d"), ("state", "s&")]
            ),
            "https://a.example/cb?x=1&code=c+d&state=s%26"
        );
        assert_eq!(
            with_query("com.example.app:/cb", &[("code", "c")]),
            "com.example.app:/cb?code=c"
        );
    }

    #[test]
    fn repeated_parameters_are_noted_and_the_form_query_drops_prompt() {
        let p = AuthorizeParams::from_pairs(
            [("a", "1"), ("a", "2"), ("prompt", "login"), ("b", "x y")]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        assert_eq!(p.repeated, vec!["a".to_owned()]);
        assert_eq!(p.to_query_without_prompt(), "a=1&b=x+y");
    }
}
