//! RFC 7662 introspection for routes that must see a revocation at once.
//! The token is verified locally first, so forgeries never reach the
//! issuer; the issuer's answer is cached by the token's SHA-256 for a short
//! time (never past `exp`), so a busy route costs the issuer one request
//! per token per TTL. The cache is bounded: when full it is emptied rather
//! than grown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::Inner;
use crate::{Claims, Error};

/// Entries kept before the cache is emptied.
const MAX_ENTRIES: usize = 10_000;

type Digest = [u8; 32];

#[derive(Default)]
pub(crate) struct IntrospectionCache(Mutex<HashMap<Digest, (bool, Duration)>>);

impl IntrospectionCache {
    fn get(&self, key: &Digest, now: Duration) -> Option<bool> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, until)| now < *until)
            .map(|(active, _)| *active)
    }

    fn put(&self, key: Digest, active: bool, until: Duration) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (active, until));
    }
}

fn digest(token: &str) -> Digest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Asks the issuer whether the locally verified `claims`' token is active.
pub(super) async fn check_active(
    inner: &Arc<Inner>,
    token: &str,
    claims: Claims,
) -> Result<Claims, Error> {
    let (Some(endpoint), Some((client_id, secret))) =
        (&inner.introspection_endpoint, &inner.introspection_client)
    else {
        return Err(Error::Unavailable);
    };
    let key = digest(token);
    let now = inner.clock.now();
    let active = match inner.introspection_cache.get(&key, now) {
        Some(active) => active,
        None => {
            inner.count_introspection();
            let response = inner
                .http
                .post(endpoint)
                .basic_auth(client_id, Some(secret))
                .form(&[("token", token), ("token_type_hint", "access_token")])
                .send()
                .await
                .map_err(|_| Error::Unavailable)?;
            if !response.status().is_success() {
                tracing::warn!(status = response.status().as_u16(), "introspection refused");
                return Err(Error::Unavailable);
            }
            let body = super::http::read_bounded(response)
                .await
                .map_err(|_| Error::Unavailable)?;
            let answer: serde_json::Value =
                serde_json::from_slice(&body).map_err(|_| Error::Unavailable)?;
            // RFC 7662 §2.2: only `"active": true` means active; the answer
            // must also be about this very token.
            let active = answer["active"] == serde_json::Value::Bool(true)
                && answer["jti"].as_str() == Some(claims.jti.as_str());
            let exp = Duration::from_secs(u64::try_from(claims.exp).unwrap_or(0));
            let until = now
                .saturating_add(inner.settings.introspection_ttl)
                .min(exp.max(now));
            inner.introspection_cache.put(key, active, until);
            active
        }
    };
    if active {
        Ok(claims)
    } else {
        Err(Error::Inactive)
    }
}
