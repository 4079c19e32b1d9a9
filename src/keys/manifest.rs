//! The key manifest (`keys/keys.toml`) and the schedule it encodes. A key's
//! state is a pure function of the manifest and the time, so every instance
//! reading the same folder derives the same states at the same moment.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// One key's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// PEM file name inside the keys folder.
    pub file: String,
    /// From then on the key is in the JWKS.
    pub published_at: DateTime<Utc>,
    /// From then on the key signs (until `retires_at`).
    pub activates_at: DateTime<Utc>,
    /// From then on the key no longer signs; absent while it is the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<DateTime<Utc>>,
    /// From then on the key leaves the JWKS and verifies nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where a key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Not yet published.
    Pending,
    /// Published, not yet signing.
    Next,
    /// The one key that signs.
    Active,
    /// No longer signing; published until its tokens have expired.
    Retired,
    /// Gone from the JWKS.
    Expired,
}

impl KeyState {
    /// Whether the key belongs in the JWKS and may verify tokens.
    pub fn is_published(self) -> bool {
        matches!(self, Self::Next | Self::Active | Self::Retired)
    }
}

/// How long a retired key stays published: the longest token lifetime, plus
/// the JWKS cache lifetime, plus the verification leeway.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Longest lifetime of a token the key signed.
    pub token_ttl: Duration,
    /// How long verifiers may cache the JWKS (`keys.jwks_max_age_secs`).
    pub max_age: Duration,
    /// The clock skew allowed past a token's `exp` (`tokens.leeway_secs`).
    pub leeway: Duration,
}

impl Retention {
    fn window(&self) -> Duration {
        self.token_ttl + self.max_age + self.leeway
    }
}

/// Every key's schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The keys, oldest first.
    #[serde(default)]
    pub keys: Vec<ManifestEntry>,
}

/// A manifest operation that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// `retire` named a kid the manifest does not list.
    #[error("no key with kid {0}")]
    UnknownKid(String),
    /// The operation would leave nothing to sign with, or a rotation's
    /// activation delay is negative.
    #[error("{0}")]
    Refused(&'static str),
}

impl Manifest {
    /// Parses `keys.toml`.
    ///
    /// # Errors
    /// The text is not a valid manifest.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Renders `keys.toml`.
    pub fn render(&self) -> String {
        let header = "# latchkey key manifest: written by `latchkey keys ...`; times are UTC.\n";
        format!(
            "{header}{}",
            toml::to_string_pretty(self).unwrap_or_default()
        )
    }

    /// The index of the key that signs at `now`: of the keys whose signing
    /// window holds `now`, the one that activated last.
    pub fn signing_index(&self, now: DateTime<Utc>) -> Option<usize> {
        self.keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.published_at <= now && k.activates_at <= now)
            .filter(|(_, k)| k.retires_at.is_none_or(|r| now < r))
            .filter(|(_, k)| k.expires_at.is_none_or(|x| now < x))
            .max_by_key(|(_, k)| k.activates_at)
            .map(|(i, _)| i)
    }

    /// The state of key `index` at `now`.
    pub fn state_of(&self, index: usize, now: DateTime<Utc>) -> KeyState {
        let Some(k) = self.keys.get(index) else {
            return KeyState::Expired;
        };
        if k.expires_at.is_some_and(|x| x <= now) {
            KeyState::Expired
        } else if now < k.published_at {
            KeyState::Pending
        } else if now < k.activates_at {
            KeyState::Next
        } else if self.signing_index(now) == Some(index) {
            KeyState::Active
        } else {
            KeyState::Retired
        }
    }

    /// The first moment after `now` at which the published set changes.
    pub fn next_change_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.keys
            .iter()
            .flat_map(|k| [Some(k.published_at), k.expires_at])
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// The first moment after `now` at which the signing key changes.
    pub fn next_activation_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.keys
            .iter()
            .flat_map(|k| [Some(k.activates_at), k.retires_at])
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// Adds a first key, published and active at once.
    pub fn add_first(&mut self, kid: String, file: String, now: DateTime<Utc>) {
        self.keys.push(ManifestEntry {
            kid,
            file,
            published_at: now,
            activates_at: now,
            retires_at: None,
            expires_at: None,
        });
    }

    /// Schedules a new key: published at `now`, signing from `now +
    /// activate_in`. The key that would otherwise sign then retires at that
    /// moment and leaves the JWKS once its tokens have expired.
    ///
    /// # Errors
    /// `Refused` when `activate_in` is negative.
    pub fn rotate(
        &mut self,
        kid: String,
        file: String,
        now: DateTime<Utc>,
        activate_in: Duration,
        retention: Retention,
    ) -> Result<DateTime<Utc>, ManifestError> {
        if activate_in < Duration::zero() {
            return Err(ManifestError::Refused(
                "the activation delay must not be negative",
            ));
        }
        let mut activates_at = now + activate_in;
        // A new key never activates before one already scheduled.
        if let Some(last) = self
            .keys
            .iter()
            .filter(|k| k.retires_at.is_none())
            .map(|k| k.activates_at)
            .max()
        {
            if activates_at <= last {
                activates_at = last + Duration::seconds(1);
            }
        }
        for k in self.keys.iter_mut().filter(|k| k.retires_at.is_none()) {
            k.retires_at = Some(activates_at);
            k.expires_at = Some(
                k.expires_at
                    .unwrap_or(activates_at + retention.window())
                    .min(activates_at + retention.window()),
            );
        }
        self.keys.push(ManifestEntry {
            kid,
            file,
            published_at: now,
            activates_at,
            retires_at: None,
            expires_at: None,
        });
        Ok(activates_at)
    }

    /// Emergency retirement of `kid`: it stops signing now and leaves the JWKS
    /// after the retention window, or at once with `immediately` (which
    /// breaks verification of the tokens it signed). When it was the signing
    /// key, the next scheduled key takes over at once.
    ///
    /// # Errors
    /// `UnknownKid`, or `Refused` when no other key could sign.
    pub fn retire(
        &mut self,
        kid: &str,
        now: DateTime<Utc>,
        immediately: bool,
        retention: Retention,
    ) -> Result<(), ManifestError> {
        let index = self
            .keys
            .iter()
            .position(|k| k.kid == kid)
            .ok_or_else(|| ManifestError::UnknownKid(kid.to_owned()))?;
        let was_signing = self.signing_index(now) == Some(index);
        let successor = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, k)| {
                *i != index && k.activates_at > now && k.expires_at.is_none_or(|x| x > now)
            })
            .min_by_key(|(_, k)| k.activates_at)
            .map(|(i, _)| i);
        if was_signing && successor.is_none() {
            return Err(ManifestError::Refused(
                "this key signs now and no other key is scheduled: run `keys rotate` first",
            ));
        }
        if was_signing {
            if let Some(s) = successor {
                let k = &mut self.keys[s];
                k.activates_at = now;
                k.published_at = k.published_at.min(now);
            }
        }
        let drop_at = if immediately {
            now
        } else {
            now + retention.window()
        };
        let k = &mut self.keys[index];
        k.retires_at = Some(k.retires_at.map_or(now, |r| r.min(now)));
        k.activates_at = k.activates_at.min(now);
        k.expires_at = Some(k.expires_at.map_or(drop_at, |x| x.min(drop_at)));
        Ok(())
    }

    /// Removes keys that have been expired for longer than `keep`, so the
    /// manifest does not grow without end. Returns their file names.
    pub fn prune(&mut self, now: DateTime<Utc>, keep: Duration) -> Vec<String> {
        let (gone, kept): (Vec<_>, Vec<_>) = self
            .keys
            .drain(..)
            .partition(|k| k.expires_at.is_some_and(|x| x + keep <= now));
        self.keys = kept;
        gone.into_iter().map(|k| k.file).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("valid time")
    }

    fn retention() -> Retention {
        Retention {
            token_ttl: Duration::seconds(900),
            max_age: Duration::seconds(300),
            leeway: Duration::seconds(60),
        }
    }

    fn rotated() -> Manifest {
        let mut m = Manifest::default();
        m.add_first("a".into(), "a.pem".into(), t(0));
        m.rotate(
            "b".into(),
            "b.pem".into(),
            t(100),
            Duration::seconds(600),
            retention(),
        )
        .expect("rotates");
        m
    }

    #[test]
    fn first_key_is_active_at_once() {
        let mut m = Manifest::default();
        m.add_first("a".into(), "a.pem".into(), t(0));
        assert_eq!(m.state_of(0, t(0)), KeyState::Active);
        assert_eq!(m.state_of(0, t(-1)), KeyState::Pending);
    }

    #[test]
    fn rotation_states_at_each_boundary() {
        let m = rotated();
        // Before the new key is published.
        assert_eq!(m.state_of(0, t(99)), KeyState::Active);
        assert_eq!(m.state_of(1, t(99)), KeyState::Pending);
        // Published, not yet signing.
        assert_eq!(m.state_of(1, t(100)), KeyState::Next);
        assert_eq!(m.state_of(1, t(699)), KeyState::Next);
        assert_eq!(m.state_of(0, t(699)), KeyState::Active);
        // Activation: exactly one signer.
        assert_eq!(m.state_of(1, t(700)), KeyState::Active);
        assert_eq!(m.state_of(0, t(700)), KeyState::Retired);
        assert_eq!(m.signing_index(t(700)), Some(1));
        // The old key stays published for ttl + max-age + leeway after it retires.
        assert_eq!(m.state_of(0, t(700 + 1259)), KeyState::Retired);
        assert_eq!(m.state_of(0, t(700 + 1260)), KeyState::Expired);
    }

    #[test]
    fn exactly_one_key_signs_at_every_second() {
        let m = rotated();
        for s in -1..3000 {
            let active = (0..m.keys.len())
                .filter(|&i| m.state_of(i, t(s)) == KeyState::Active)
                .count();
            assert_eq!(active, usize::from(s >= 0), "at {s}");
        }
    }

    #[test]
    fn next_change_is_publication_or_expiry() {
        let m = rotated();
        assert_eq!(m.next_change_after(t(0)), Some(t(100)));
        assert_eq!(m.next_change_after(t(100)), Some(t(700 + 1260)));
        assert_eq!(m.next_activation_after(t(100)), Some(t(700)));
    }

    #[test]
    fn retire_hands_signing_to_the_next_key() {
        let mut m = rotated();
        m.retire("a", t(200), false, retention()).expect("retires");
        assert_eq!(m.state_of(1, t(200)), KeyState::Active);
        assert_eq!(m.state_of(0, t(200)), KeyState::Retired);
        assert_eq!(m.state_of(0, t(200 + 1260)), KeyState::Expired);
    }

    #[test]
    fn retire_now_drops_the_key_at_once() {
        let mut m = rotated();
        m.retire("a", t(200), true, retention()).expect("retires");
        assert_eq!(m.state_of(0, t(200)), KeyState::Expired);
    }

    #[test]
    fn retiring_the_only_signer_is_refused() {
        let mut m = Manifest::default();
        m.add_first("a".into(), "a.pem".into(), t(0));
        assert!(matches!(
            m.retire("a", t(5), false, retention()),
            Err(ManifestError::Refused(_))
        ));
        assert!(matches!(
            m.retire("zz", t(5), false, retention()),
            Err(ManifestError::UnknownKid(_))
        ));
    }

    #[test]
    fn manifest_round_trips_through_toml() {
        let m = rotated();
        assert_eq!(Manifest::parse(&m.render()).expect("parses"), m);
    }
}
