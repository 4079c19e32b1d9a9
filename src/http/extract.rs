//! Extractors: strict bodies (form and JSON, with size and media-type checks
//! that answer in the contract's JSON shape), client authentication, bearer
//! tokens and the client address.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;
use latchkey_verify::dpop::ProofError;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::config::{ForwardedHeader, TrustedProxies};
use crate::domain::client_assertion::ASSERTION_TYPE;
use crate::domain::clients::ClientCredentials;
use crate::domain::dpop::DpopFailure;
use crate::domain::error::DomainError;

/// The largest body any endpoint reads (RFC 6749 requests are small).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why a form body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// A parameter appears twice (RFC 6749 §3.1).
    Repeated,
    /// A name or value is not valid UTF-8 after percent-decoding.
    InvalidUtf8,
}

/// Parses `application/x-www-form-urlencoded` strictly: a repeated parameter
/// or invalid UTF-8 is an error, and parameters with an empty value count as
/// absent (RFC 6749 §3.1).
///
/// # Errors
/// `Repeated` or `InvalidUtf8`.
pub fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, FormError> {
    let mut out = HashMap::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let mut it = pair.splitn(2, |&b| b == b'=');
        let name = decode_component(it.next().unwrap_or_default())?;
        let value = decode_component(it.next().unwrap_or_default())?;
        if name.is_empty() {
            continue;
        }
        if out.contains_key(&name) {
            return Err(FormError::Repeated);
        }
        if !value.is_empty() {
            out.insert(name, value);
        } else {
            // Remember the name so that `a=&a=x` still counts as repeated.
            out.insert(name, String::new());
        }
    }
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}

fn decode_component(raw: &[u8]) -> Result<String, FormError> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
    String::from_utf8(bytes).map_err(|_| FormError::InvalidUtf8)
}

fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads the body up to `MAX_BODY_BYTES`; beyond it, 413 without reading on.
async fn read_body(req: &HttpRequest, mut payload: Payload) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::MalformedBody("the request body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A strictly parsed form body (`application/x-www-form-urlencoded`).
/// `Debug` lists the parameter names only: values include passwords, tokens
/// and client secrets.
#[derive(Default)]
pub struct StrictForm(pub HashMap<String, String>);

impl std::fmt::Debug for StrictForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_tuple("StrictForm").field(&names).finish()
    }
}

impl StrictForm {
    /// A parameter's value; `None` when absent or empty, which RFC 6749
    /// §3.1 treats alike.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter that must be present and not empty; `missing` is the
    /// `error_description` otherwise.
    ///
    /// # Errors
    /// `InvalidRequest` naming nothing secret.
    pub fn require(&self, name: &str, missing: &'static str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or(ApiError::Domain(DomainError::InvalidRequest(missing)))
    }
}

impl FromRequest for StrictForm {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            if media_type(&req) != "application/x-www-form-urlencoded" {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be application/x-www-form-urlencoded",
                ));
            }
            let body = read_body(&req, payload).await?;
            parse_form(&body).map(StrictForm).map_err(|e| match e {
                FormError::Repeated => {
                    DomainError::InvalidRequest("a parameter was given more than once").into()
                }
                FormError::InvalidUtf8 => {
                    ApiError::MalformedBody("the form body is not valid UTF-8")
                }
            })
        })
    }
}

/// A JSON body (`application/json`) decoded into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            if media_type(&req) != "application/json" {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be application/json",
                ));
            }
            let body = read_body(&req, payload).await?;
            serde_json::from_slice(&body).map(JsonBody).map_err(|_| {
                ApiError::MalformedBody("the body is not the JSON object this endpoint expects")
            })
        })
    }
}

/// An optional JSON body: an empty body is `None`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(&req, payload).await?;
            if body.is_empty() {
                return Ok(OptionalJson(None));
            }
            if media_type(&req) != "application/json" {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be application/json",
                ));
            }
            serde_json::from_slice(&body)
                .map(|v| OptionalJson(Some(v)))
                .map_err(|_| {
                    ApiError::MalformedBody("the body is not the JSON object this endpoint expects")
                })
        })
    }
}

/// Client identification from the Basic header (`client_secret_basic`),
/// the body (`client_secret_post`, or `client_id` alone for public
/// clients), or a JWT assertion in the body (`private_key_jwt`, RFC 7523
/// §2.2). Using two methods at once is refused (RFC 6749 §2.3).
///
/// # Errors
/// `InvalidRequest` for two methods at once or half an assertion;
/// `ClientAuthFailed` for a malformed Basic header or an assertion type
/// other than a JWT.
pub fn client_credentials(
    req: &HttpRequest,
    form: &StrictForm,
) -> Result<ClientCredentials, ApiError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let assertion = client_assertion(form)?;
    if assertion.is_some() && (basic.is_some() || form.get("client_secret").is_some()) {
        return Err(two_methods());
    }
    let Some(encoded) = basic else {
        return Ok(ClientCredentials {
            client_id: form.get("client_id").map(str::to_owned),
            client_secret: form.get("client_secret").map(str::to_owned),
            client_assertion: assertion,
        });
    };
    if form.get("client_secret").is_some() {
        return Err(two_methods());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| DomainError::ClientAuthFailed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| DomainError::ClientAuthFailed)?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or(DomainError::ClientAuthFailed)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded inside the header.
    let id = decode_component(id.as_bytes()).map_err(|_| DomainError::ClientAuthFailed)?;
    let secret = decode_component(secret.as_bytes()).map_err(|_| DomainError::ClientAuthFailed)?;
    if form.get("client_id").is_some_and(|body_id| body_id != id) {
        return Err(DomainError::InvalidRequest(
            "client_id in the body differs from the Authorization header",
        )
        .into());
    }
    Ok(ClientCredentials {
        client_id: Some(id),
        client_secret: Some(secret),
        client_assertion: None,
    })
}

fn two_methods() -> ApiError {
    DomainError::InvalidRequest("use one client authentication method, not two").into()
}

/// `client_assertion` with its `client_assertion_type` (RFC 7521 §4.2):
/// both or neither; the only type accepted is a JWT (RFC 7523 §2.2).
fn client_assertion(form: &StrictForm) -> Result<Option<String>, ApiError> {
    match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => Ok(None),
        (Some(ASSERTION_TYPE), Some(a)) => Ok(Some(a.to_owned())),
        (Some(_), Some(_)) => Err(DomainError::ClientAuthFailed.into()),
        _ => Err(DomainError::InvalidRequest(
            "client_assertion and client_assertion_type go together",
        )
        .into()),
    }
}

/// The bearer token from `Authorization: Bearer …` (RFC 6750 §2.1).
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// How the request presented its access token (RFC 6750 §2.1, RFC 9449 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedToken {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: DPoP <token>`, to be checked with the `DPoP` proof.
    Dpop(String),
}

/// The access token of the `Authorization` header, by scheme (both
/// case-insensitive); `None` for no header, another scheme or an empty token.
pub fn presented_token(req: &HttpRequest) -> Option<PresentedToken> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim().to_owned();
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(PresentedToken::Bearer(token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some(PresentedToken::Dpop(token))
    } else {
        None
    }
}

/// Every `DPoP` header value (RFC 9449 §4.1); the domain refuses more than
/// one. A value that is not visible ASCII is a malformed proof.
///
/// # Errors
/// `invalid_dpop_proof` (at the token endpoint, or at a resource when
/// `at_resource`).
pub fn dpop_headers(req: &HttpRequest, at_resource: bool) -> Result<Vec<String>, ApiError> {
    req.headers()
        .get_all("dpop")
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                let f = DpopFailure::Proof(ProofError::Malformed);
                if at_resource {
                    DomainError::DpopAccessRefused(f).into()
                } else {
                    DomainError::DpopRefused(f).into()
                }
            })
        })
        .collect()
}

/// The client's address: the socket peer, or, when the peer is a trusted
/// proxy, the nearest address in the configured forwarding header that is not
/// itself a trusted proxy.
pub fn client_address(req: &HttpRequest, trusted: &TrustedProxies) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let name = match trusted.header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    // A header line that is not visible ASCII cannot be read; it is kept as
    // an unreadable entry, so it stops the walk instead of being skipped.
    let lines: Vec<&str> = req
        .headers()
        .get_all(name)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .collect();
    Some(forwarded_client(peer, &lines, trusted))
}

/// The longest unreadable forwarding entry kept as a client's identity.
const MAX_OPAQUE_CLIENT: usize = 64;

/// The client behind `peer`, given the forwarding header's lines in the order
/// received. Every line is one list (a proxy may append its own line rather
/// than extend the last one), so the lines are joined. Walking from the right,
/// entries that are trusted proxies are passed over; the first other entry is
/// the client. An entry that does not parse as an address is the client as it
/// stands: skipping it would let the client choose the next one to the left.
/// Empty list elements carry nothing and are ignored (RFC 9110 §5.6.1).
pub fn forwarded_client(peer: IpAddr, lines: &[&str], trusted: &TrustedProxies) -> String {
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let entries: Vec<&str> = lines
        .iter()
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let mut client = Hop::Address(peer);
    for entry in entries.iter().rev() {
        client = match trusted.header {
            ForwardedHeader::XForwardedFor => parse_node(entry),
            ForwardedHeader::Forwarded => forwarded_for(entry),
        };
        match client {
            Hop::Address(ip) if trusted.contains(&ip) => continue,
            _ => break,
        }
    }
    match client {
        Hop::Address(ip) => ip.to_canonical().to_string(),
        Hop::Opaque(text) => text,
    }
}

/// One forwarding entry: an address, or something that is not one.
#[derive(Debug, PartialEq, Eq)]
enum Hop {
    Address(IpAddr),
    Opaque(String),
}

/// An address as proxies write it: `203.0.113.7`, `203.0.113.7:4711`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(entry: &str) -> Hop {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Hop::Address(ip);
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Hop::Address(socket.ip());
    }
    if let Some(inner) = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<std::net::Ipv6Addr>() {
            return Hop::Address(IpAddr::V6(ip));
        }
    }
    Hop::Opaque(opaque(entry))
}

/// The `for=` node of one RFC 7239 `forwarded-element`
/// (`for=192.0.2.60;proto=https;by=203.0.113.43`), its value possibly a
/// quoted string (`for="[2001:db8::1]:4711"`). An element without `for` is
/// opaque.
fn forwarded_for(element: &str) -> Hop {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim())
    });
    match value {
        Some(v) => {
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(|v| v.replace('\\', ""))
                .unwrap_or_else(|| v.to_owned());
            parse_node(&unquoted)
        }
        None => Hop::Opaque(opaque(element)),
    }
}

/// An unreadable entry, bounded and printable, to key throttling on.
fn opaque(entry: &str) -> String {
    let text: String = entry
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .take(MAX_OPAQUE_CLIENT)
        .collect();
    format!("unparsed:{text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn proxies(header: ForwardedHeader, list: &[&str]) -> TrustedProxies {
        TrustedProxies {
            addresses: list.iter().map(|p| p.parse().expect("ip")).collect(),
            header,
        }
    }

    fn xff(peer: &str, lines: &[&str]) -> String {
        let trusted = proxies(ForwardedHeader::XForwardedFor, &["10.0.0.1", "10.0.0.2"]);
        forwarded_client(peer.parse().expect("ip"), lines, &trusted)
    }

    fn fwd(lines: &[&str]) -> String {
        let trusted = proxies(ForwardedHeader::Forwarded, &["10.0.0.1", "2001:db8::a"]);
        forwarded_client("10.0.0.1".parse().expect("ip"), lines, &trusted)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(xff("192.0.2.1", &["203.0.113.9"]), "192.0.2.1");
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right_across_every_line() {
        assert_eq!(xff("10.0.0.1", &[]), "10.0.0.1");
        assert_eq!(xff("10.0.0.1", &["203.0.113.9"]), "203.0.113.9");
        assert_eq!(xff("10.0.0.1", &["1.1.1.1, 203.0.113.9"]), "203.0.113.9");
        assert_eq!(xff("10.0.0.1", &["1.1.1.1", "203.0.113.9"]), "203.0.113.9");
        assert_eq!(
            xff("10.0.0.1", &["1.1.1.1, 203.0.113.9", "10.0.0.2,"]),
            "203.0.113.9"
        );
        // Only trusted proxies: the left-most of them.
        assert_eq!(xff("10.0.0.1", &["10.0.0.2"]), "10.0.0.2");
    }

    #[test]
    fn ports_and_brackets_are_read() {
        assert_eq!(
            xff("10.0.0.1", &["1.1.1.1, 203.0.113.9:4711"]),
            "203.0.113.9"
        );
        assert_eq!(
            xff("10.0.0.1", &["1.1.1.1", "[2001:db8::9]:4711"]),
            "2001:db8::9"
        );
        assert_eq!(xff("10.0.0.1", &["[2001:db8::9]"]), "2001:db8::9");
        assert_eq!(xff("10.0.0.1", &["::ffff:203.0.113.9"]), "203.0.113.9");
        assert_eq!(xff("10.0.0.1", &["1.1.1.1, 10.0.0.2:80"]), "1.1.1.1");
    }

    #[test]
    fn an_unparsable_entry_is_the_client_never_skipped() {
        assert_eq!(xff("10.0.0.1", &["1.1.1.1, unknown"]), "unparsed:unknown");
        assert_eq!(
            xff("10.0.0.1", &["1.1.1.1", "bad entry"]),
            "unparsed:bad?entry"
        );
        let long = "x".repeat(500);
        assert_eq!(xff("10.0.0.1", &[&long]).len(), "unparsed:".len() + 64);
    }

    #[test]
    fn forwarded_for_parameters_are_read() {
        assert_eq!(
            fwd(&["for=1.1.1.1, for=203.0.113.9;proto=https"]),
            "203.0.113.9"
        );
        assert_eq!(
            fwd(&["for=1.1.1.1", "For=\"[2001:db8::9]:4711\""]),
            "2001:db8::9"
        );
        assert_eq!(
            fwd(&["proto=http;for=203.0.113.9:80;by=10.0.0.1"]),
            "203.0.113.9"
        );
        assert_eq!(
            fwd(&["for=203.0.113.9", "for=\"[2001:db8::a]\";by=x"]),
            "203.0.113.9"
        );
        assert_eq!(fwd(&["for=1.1.1.1, for=_hidden"]), "unparsed:_hidden");
        assert_eq!(fwd(&["for=1.1.1.1, proto=https"]), "unparsed:proto=https");
        assert_eq!(fwd(&["for=unknown"]), "unparsed:unknown");
    }

    proptest! {
        /// Whatever a client writes to the left, the address the trusted
        /// proxy appended wins.
        #[test]
        fn nothing_to_the_left_moves_the_client(junk in "[ -~]{0,40}") {
            let line = format!("{junk}, 203.0.113.9");
            prop_assert_eq!(xff("10.0.0.1", &[&junk, &line]), "203.0.113.9");
        }
    }

    #[test]
    fn parses_and_decodes() {
        let f = parse_form(b"grant_type=password&username=a%40b.example&password=p+w%26")
            .expect("parses");
        assert_eq!(f["username"], "a@b.example");
        assert_eq!(f["password"], "p w&");
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(parse_form(b"a=1&a=2"), Err(FormError::Repeated));
        assert_eq!(parse_form(b"a=&a=2"), Err(FormError::Repeated));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let f = parse_form(b"scope=&a=1").expect("parses");
        assert!(!f.contains_key("scope"));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let f = StrictForm(
            parse_form(b"password=hunter2hunter2&client_secret=lk_cs_x").expect("parses"),
        );
        let shown = format!("{f:?}");
        assert!(shown.contains("password") && shown.contains("client_secret"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("lk_cs_x"),
            "{shown}"
        );
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(parse_form(b"a=%ff%fe"), Err(FormError::InvalidUtf8));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_form(&body);
        }

        #[test]
        fn a_repeated_name_is_always_refused(
            pairs in proptest::collection::vec(("[a-z_]{1,8}", "[a-zA-Z0-9+.]{0,12}"), 1..6),
            pick in any::<proptest::sample::Index>(),
            value in "[a-zA-Z0-9]{0,8}",
        ) {
            let mut body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let name = &pairs[pick.index(pairs.len())].0;
            body.push(format!("{name}={value}"));
            prop_assert_eq!(parse_form(body.join("&").as_bytes()), Err(FormError::Repeated));
        }

        #[test]
        fn parsed_forms_hold_only_non_empty_names_and_values(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(form) = parse_form(&body) {
                prop_assert!(form.iter().all(|(k, v)| !k.is_empty() && !v.is_empty()));
            }
        }

        #[test]
        fn encoded_pairs_round_trip(pairs in proptest::collection::hash_map("[a-z_]{1,12}", "\\PC{1,24}", 0..8)) {
            let body: String = pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)))
                .collect::<Vec<_>>()
                .join("&");
            prop_assert_eq!(parse_form(body.as_bytes()).expect("valid form"), pairs);
        }
    }
}
