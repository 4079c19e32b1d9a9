//! Redirect URIs: what a client may register (RFC 8252 §7, RFC 9700
//! §4.1.3) and when a presented one matches a registered one. Pure logic.

use url::{Host, Url};

use crate::domain::error::DomainError;

/// Longest redirect URI accepted, in bytes.
pub const MAX_REDIRECT_URI_BYTES: usize = 2000;

const BAD: DomainError = DomainError::InvalidRequest(
    "a redirect URI must be https, loopback http (127.0.0.1 or [::1]), or a private-use \
     scheme in reverse-domain form, without fragment or wildcard",
);

/// Validates a redirect URI for registration: https with a host; http only
/// to a loopback IP literal (RFC 8252 §7.3) or `localhost`; or a
/// private-use scheme in reverse-domain form such as `com.example.app:/cb`
/// (RFC 8252 §7.1). No fragment (RFC 6749 §3.1.2), no wildcard, no
/// credentials. The URI is kept exactly as given: matching is by string.
///
/// # Errors
/// `InvalidRequest` naming the rule.
pub fn validate_redirect_uri(raw: &str) -> Result<String, DomainError> {
    if raw.is_empty()
        || raw.len() > MAX_REDIRECT_URI_BYTES
        || raw.contains(['#', '*', ' '])
        || raw.chars().any(char::is_control)
    {
        return Err(BAD);
    }
    let url = Url::parse(raw).map_err(|_| BAD)?;
    // The parser normalises; a URI that does not survive unchanged would
    // match by string only in its normalised form, which is a trap.
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(BAD);
    }
    // The parser reads `https:///cb` as host `cb`; the raw string must
    // name its host itself.
    let names_host = |scheme: &str| {
        raw.get(scheme.len() + 3..)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    };
    match url.scheme() {
        "https" if !names_host("https") => return Err(BAD),
        "http" if !names_host("http") => return Err(BAD),
        "https" => url.host().map(|_| ()).ok_or(BAD)?,
        "http" => {
            if loopback_host(&url).is_none() && url.host_str() != Some("localhost") {
                return Err(BAD);
            }
        }
        scheme => {
            // Reverse-domain private-use scheme: at least one dot, no host
            // part that could be confused with a web origin.
            if !scheme.contains('.') || url.has_host() && url.host_str() != Some("") {
                return Err(BAD);
            }
        }
    }
    Ok(raw.to_owned())
}

/// The loopback IP literal of an http URL (`127.0.0.1` or `::1`), if it is one.
fn loopback_host(url: &Url) -> Option<String> {
    if url.scheme() != "http" {
        return None;
    }
    match url.host()? {
        Host::Ipv4(ip) if ip.is_loopback() => Some(ip.to_string()),
        Host::Ipv6(ip) if ip.is_loopback() => Some(ip.to_string()),
        _ => None,
    }
}

/// Whether a presented `redirect_uri` matches one registered: the exact
/// string (RFC 9700 §4.1.3), except that for a loopback IP redirect the
/// port is ignored (RFC 8252 §7.3: a native app listens on whatever port the
/// OS gives it). Everything else, path and query included, must be equal.
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    match (loopback_host(&r), loopback_host(&p)) {
        (Some(rh), Some(ph)) => {
            rh == ph
                && strip_port(registered) == strip_port(presented)
                && p.fragment().is_none()
                && p.username().is_empty()
                && p.password().is_none()
        }
        _ => false,
    }
}

/// `http://127.0.0.1:PORT/rest` without `:PORT`, on the raw string, so the
/// comparison of the rest stays exact.
fn strip_port(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix("http://") else {
        return uri.to_owned();
    };
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(host_end);
    let host = if authority.starts_with('[') {
        authority.find(']').map_or(authority, |i| &authority[..=i])
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    format!("http://{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_accepts_https_loopback_and_private_use_schemes() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8123/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn registration_refuses_fragments_wildcards_and_unsafe_schemes() {
        for bad in [
            "",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "http://app.example.com/cb",
            "http://10.0.0.1/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "myapp:/cb",
            "https://user:pw@app.example.com/cb",
            "https://app.example.com/c b",
            "https:///cb",
            "relative/path",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
        assert!(validate_redirect_uri(&format!("https://a.example/{}", "x".repeat(2000))).is_err());
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port() {
        assert!(redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb/"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb?x=1"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://A.example/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example:443/cb",
            "https://a.example:8443/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51234/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1:1/cb",
            "http://127.0.0.1:2/cb"
        ));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:9/cb"));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/other"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://[::1]:5/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/cb#x"
        ));
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:5/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.example/cb"
        ));
    }
}
