//! Where the verifier reads the time: token time checks and the JWKS cache's
//! freshness both come from a [`Clock`], so a service's tests can move time
//! instead of sleeping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Time since the Unix epoch.
    fn now(&self) -> Duration;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock before 1970 reads as the epoch rather than panicking.
        #[expect(
            clippy::disallowed_methods,
            reason = "the one place this crate reads the wall clock"
        )]
        let now = SystemTime::now();
        now.duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// A clock that moves only when told to, for tests.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone)]
pub struct ManualClock(std::sync::Arc<std::sync::Mutex<Duration>>);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// Starts at the system's current time.
    pub fn new() -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(
            SystemClock.now(),
        )))
    }

    /// Moves the clock forward by `by`, for every clone at once: clones
    /// share one time.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
