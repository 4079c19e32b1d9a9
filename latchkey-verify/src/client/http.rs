//! The HTTP side of the verifier: discovery (OIDC Discovery 1.0 §4), the
//! conditional JWKS fetch (RFC 9110 §13.1.2 `If-None-Match`) and the
//! `Cache-Control` reading that decides how long a key set stays fresh
//! (RFC 9111 §5.2.2.1 `max-age`, §5.1 `Age`). Bodies are read with a size
//! bound: an issuer, or whatever answers in its place, cannot make a
//! service buffer without limit.

use std::time::Duration;

use reqwest::header::{HeaderMap, AGE, CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

use crate::keys::KeySet;

/// Largest discovery document or JWK Set read.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why discovery failed at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The issuer could not be reached, or answered with an error status.
    #[error("fetching {what} failed")]
    Fetch {
        /// `discovery` or `JWKS`.
        what: &'static str,
        /// The transport error, if there was one.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The discovery document's `issuer` is not exactly the URL given
    /// (OIDC Discovery §4.3: a mismatch means the document is not the
    /// issuer's and must not be used).
    #[error("discovery names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The issuer as given to the builder, compared byte for byte (a
        /// trailing `/` counts).
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The discovery document lacks `jwks_uri` or is not JSON.
    #[error("discovery document is malformed")]
    Metadata,
    /// The JWKS is not a JWK Set.
    #[error("the JWKS is not a JWK Set")]
    KeySet,
    /// The HTTP client could not be built (TLS backend unavailable).
    #[error("HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

/// The members of the discovery document the verifier uses.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub jwks_uri: String,
    pub introspection_endpoint: Option<String>,
}

/// Reads `{issuer}/.well-known/openid-configuration` and checks its
/// `issuer` member against `issuer` exactly.
pub(crate) async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, SetupError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let fail = |source| SetupError::Fetch {
        what: "discovery",
        source,
    };
    let response = http.get(url).send().await.map_err(|e| fail(Some(e)))?;
    if !response.status().is_success() {
        return Err(fail(None));
    }
    let body = read_bounded(response).await.map_err(fail)?;
    let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|_| SetupError::Metadata)?;
    let found = doc["issuer"].as_str().ok_or(SetupError::Metadata)?;
    if found != issuer {
        return Err(SetupError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: found.to_owned(),
        });
    }
    Ok(Metadata {
        jwks_uri: doc["jwks_uri"]
            .as_str()
            .ok_or(SetupError::Metadata)?
            .to_owned(),
        introspection_endpoint: doc["introspection_endpoint"].as_str().map(str::to_owned),
    })
}

/// One JWKS answer.
#[derive(Debug)]
pub(crate) enum JwksAnswer {
    /// 200 with a new set.
    Fresh {
        keys: KeySet,
        etag: Option<String>,
        max_age: Option<Duration>,
    },
    /// 304: the set we hold is still current.
    NotModified { max_age: Option<Duration> },
}

/// A JWKS fetch that failed; the cached set stays in use.
#[derive(Debug)]
pub(crate) struct FetchFailed;

/// Fetches the JWKS, conditionally when an `ETag` is known.
pub(crate) async fn fetch_jwks(
    http: &reqwest::Client,
    uri: &str,
    etag: Option<&str>,
) -> Result<JwksAnswer, FetchFailed> {
    let mut request = http.get(uri);
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let response = request.send().await.map_err(|_| FetchFailed)?;
    let max_age = max_age(response.headers());
    match response.status() {
        StatusCode::NOT_MODIFIED => Ok(JwksAnswer::NotModified { max_age }),
        StatusCode::OK => {
            let etag = response
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_bounded(response).await.map_err(|_| FetchFailed)?;
            let keys = KeySet::from_json(&body).map_err(|_| FetchFailed)?;
            Ok(JwksAnswer::Fresh {
                keys,
                etag,
                max_age,
            })
        }
        _ => Err(FetchFailed),
    }
}

/// Reads a body of at most [`MAX_BODY_BYTES`].
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
) -> Result<Vec<u8>, Option<reqwest::Error>> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Some)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How long the response may be reused: `max-age` minus `Age`; zero for
/// `no-store` or `no-cache` (the caller clamps to its minimum); `None`
/// when the response says nothing.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            if directive.eq_ignore_ascii_case("no-store")
                || directive.eq_ignore_ascii_case("no-cache")
            {
                return Some(Duration::ZERO);
            }
            let Some((name, arg)) = directive.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("max-age") {
                // RFC 9111 §1.2.2: a delta-seconds too large to represent is
                // taken as the largest value; a malformed one is ignored.
                let arg = arg.trim().trim_matches('"');
                if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
                    max_age = Some(Duration::from_secs(arg.parse().unwrap_or(u64::MAX)));
                }
            }
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_default();
    max_age.map(|m| m.saturating_sub(age))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(reqwest::header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_max_age_minus_age() {
        assert_eq!(
            max_age(&headers(&[(CACHE_CONTROL, "public, max-age=300")])),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age(&headers(&[
                (CACHE_CONTROL, "public, Max-Age=\"60\""),
                (AGE, "20")
            ])),
            Some(Duration::from_secs(40))
        );
        assert_eq!(
            max_age(&headers(&[(CACHE_CONTROL, "max-age=10"), (AGE, "99")])),
            Some(Duration::ZERO)
        );
        assert_eq!(
            max_age(&headers(&[(
                CACHE_CONTROL,
                "max-age=99999999999999999999999"
            )])),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn no_store_means_zero_and_silence_means_none() {
        assert_eq!(
            max_age(&headers(&[(CACHE_CONTROL, "no-store, max-age=300")])),
            Some(Duration::ZERO)
        );
        assert_eq!(max_age(&headers(&[])), None);
        assert_eq!(max_age(&headers(&[(CACHE_CONTROL, "max-age=-5")])), None);
        assert_eq!(max_age(&headers(&[(CACHE_CONTROL, "max-age=")])), None);
    }
}
