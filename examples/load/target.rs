//! Where the load goes: the loopback-only URL check, the endpoint URLs and the HTTP client.
//! Nothing here knows about scenarios or statistics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::{redirect, Client, Url};

/// Parses `--url` and refuses anything that is not plain http on this machine.
///
/// A load driver aimed at someone else's host is an attack, so the check is strict:
/// only `localhost`, 127.0.0.0/8 and `::1` pass; no credentials, query or fragment.
/// The returned URL ends in `/`, so endpoint paths join below any prefix.
///
/// # Errors
/// When the URL does not parse or does not name a loopback http server.
pub fn parse_loopback_url(raw: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(raw).with_context(|| format!("--url {raw:?} is not a URL"))?;
    if url.scheme() != "http" {
        bail!(
            "--url must use http (the driver is built without TLS), not {}",
            url.scheme()
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("--url must not carry credentials");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--url must not carry a query or fragment");
    }
    if !url.host_str().is_some_and(is_loopback_host) {
        bail!(
            "--url must name a loopback host (localhost, 127.0.0.0/8 or [::1]); refusing {raw:?}"
        );
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Whether a URL host (as `Url::host_str` prints it) is a loopback address or `localhost`.
///
/// The url crate has already normalised numeric forms (`127.1`, `0x7f000001`) to
/// dotted IPv4 and wraps IPv6 in brackets, so parsing the bare text is enough.
fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// The server endpoints the scenarios use.
///
/// The paths are the fixed ones from SPEC.md, joined to the loopback base URL, and not
/// read from the discovery document: discovery carries the public issuer's URLs, which
/// could point away from this machine.
#[derive(Clone)]
pub struct Endpoints {
    /// GET /healthz, probed once before setup.
    pub health: Url,
    /// POST /v1/users (sign-up).
    pub users: Url,
    /// POST /oauth/token.
    pub token: Url,
    /// POST /oauth/introspect.
    pub introspect: Url,
    /// GET /.well-known/jwks.json.
    pub jwks: Url,
}

impl Endpoints {
    /// Joins the endpoint paths to a base URL ending in `/`.
    ///
    /// # Errors
    /// Only if a fixed path fails to join, which a valid base URL never causes.
    pub fn new(base: &Url) -> anyhow::Result<Self> {
        let join = |path: &str| {
            base.join(path)
                .with_context(|| format!("joining {path} to the base URL"))
        };
        Ok(Endpoints {
            health: join("healthz")?,
            users: join("v1/users")?,
            token: join("oauth/token")?,
            introspect: join("oauth/introspect")?,
            jwks: join(".well-known/jwks.json")?,
        })
    }
}

/// Builds an HTTP/1.1 keep-alive client whose idle pool holds one connection per worker.
///
/// Redirects are not followed and proxies are not used, so no answer and no
/// environment variable can send the load anywhere but the checked loopback address;
/// `localhost` is pinned to 127.0.0.1 for the same reason.
///
/// # Errors
/// When reqwest cannot build the client.
pub fn build_client(concurrency: usize, timeout: Duration) -> anyhow::Result<Client> {
    Client::builder()
        .http1_only()
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(redirect::Policy::none())
        .no_proxy()
        .resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .build()
        .context("building the HTTP client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_accepted() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3/",
            "http://localhost:8080",
            "http://LOCALHOST:1",
            "http://[::1]:8080",
            "http://2130706433:8080",
        ] {
            assert!(parse_loopback_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_hosts_are_refused() {
        for url in [
            "http://10.0.0.1:8080",
            "http://192.168.1.1",
            "http://0.0.0.0:8080",
            "http://example.com",
            "http://localhost.example.com",
            "http://[::ffff:7f00:1]:8080",
            "http://[fe80::1]:8080",
            "https://127.0.0.1:8443",
            "http://user:pw@127.0.0.1:8080",
            "http://127.0.0.1:8080/?x=1",
            "not a url",
        ] {
            assert!(parse_loopback_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn endpoints_join_below_a_path_prefix() {
        let base = parse_loopback_url("http://127.0.0.1:8080/auth").ok();
        let token = base
            .and_then(|b| Endpoints::new(&b).ok())
            .map(|e| e.token.to_string());
        assert_eq!(
            token.as_deref(),
            Some("http://127.0.0.1:8080/auth/oauth/token")
        );
    }
}
