//! What an instance can say about itself: readiness for the load balancer,
//! the published JWK Set, the key-ring version, and closing the store on
//! shutdown.

use crate::keys::JwksDocument;

use super::Services;

/// Whether this instance can serve: `/readyz` answers 200 only when both
/// hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The store answered a ping.
    pub store: bool,
    /// A key is active to sign with.
    pub keys: bool,
    /// The key-ring version this instance holds, so an operator can see
    /// every instance caught up with a rotation before it activates.
    pub keys_version: i64,
}

impl Readiness {
    /// Both the store and a signing key are there.
    pub fn ready(&self) -> bool {
        self.store && self.keys
    }
}

impl Services {
    /// Pings the store and looks for a signing key. The store gets a second
    /// try: the first may draw a pooled connection that died while idle (it
    /// is discarded as it fails), which says nothing about the database.
    pub async fn readiness(&self) -> Readiness {
        let store = self.store.ping().await.is_ok() || self.store.ping().await.is_ok();
        Readiness {
            store,
            keys: self.keys.signing_key(self.now()).is_ok(),
            keys_version: self.keys.version(),
        }
    }

    /// The key-ring version this instance holds; `keys list` compares it
    /// with the store's.
    pub fn key_ring_version(&self) -> i64 {
        self.keys.version()
    }

    /// The JWK Set published now, and how many seconds it may be cached:
    /// `keys.jwks_max_age_secs`, or less when the set changes sooner.
    pub fn jwks(&self) -> (JwksDocument, i64) {
        self.keys.jwks(self.now(), self.policy.jwks_max_age)
    }

    /// Closes the store's connections; called once, after the server has
    /// stopped serving.
    pub async fn close(&self) {
        self.store.close().await;
    }
}
