//! CSRF tokens for server-rendered forms: a MAC over the browser's binding
//! cookie, the form's purpose and the context the form acts on. No I/O and
//! no state: the server keeps nothing per form.
//!
//! ```text
//! token = base64url( HMAC-SHA-256(key, "latchkey-csrf-v1" | len|purpose | len|browser | len|context) )
//! ```
//!
//! `browser` is the value of a random per-browser cookie that only latchkey
//! can set (`__Host-` prefixed), so a page elsewhere cannot know it, and a
//! token taken from one browser (or one form) is worthless in another.
//! `context` binds the token to what the form acts on (the pending
//! authorization request, a reset link), so a token for one cannot be replayed
//! against another.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The key forms are protected with (derived from the server secret).
pub struct CsrfKey(hmac::Key);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey([redacted])")
    }
}

impl CsrfKey {
    /// Wraps a key derived from the refresh-token secret under its own label
    /// (`RefreshSecret::derive`), so a form's token never doubles as another
    /// MAC.
    pub fn new(key: hmac::Key) -> Self {
        Self(key)
    }

    fn tag(&self, purpose: &str, browser: &str, context: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(b"latchkey-csrf-v1");
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        for part in [purpose, browser, context] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        ctx.sign()
    }

    /// The token a form for `purpose` on `context` carries in `browser`.
    pub fn token(&self, purpose: &str, browser: &str, context: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(purpose, browser, context).as_ref())
    }

    /// Whether `presented` is the token for exactly this purpose, browser and
    /// context, compared in constant time.
    pub fn is_valid(&self, purpose: &str, browser: &str, context: &str, presented: &str) -> bool {
        if browser.is_empty() {
            return false;
        }
        let Ok(raw) = URL_SAFE_NO_PAD.decode(presented) else {
            return false;
        };
        let expected = self.tag(purpose, browser, context);
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), &raw).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> CsrfKey {
        CsrfKey::new(hmac::Key::new(hmac::HMAC_SHA256, &[b; 32]))
    }

    #[test]
    fn a_token_is_valid_only_for_its_purpose_browser_and_context() {
        let k = key(1);
        let t = k.token("login", "browser-a", "ctx");
        assert!(k.is_valid("login", "browser-a", "ctx", &t));
        assert!(!k.is_valid("consent", "browser-a", "ctx", &t));
        assert!(!k.is_valid("login", "browser-b", "ctx", &t));
        assert!(!k.is_valid("login", "browser-a", "ctx2", &t));
        assert!(!key(2).is_valid("login", "browser-a", "ctx", &t));
        assert!(!k.is_valid("login", "browser-a", "ctx", "not base64!"));
        assert!(!k.is_valid("login", "browser-a", "ctx", ""));
        assert!(!k.is_valid("login", "", "ctx", &k.token("login", "", "ctx")));
    }

    #[test]
    fn parts_are_length_prefixed() {
        let k = key(1);
        assert_ne!(k.token("ab", "c", "d"), k.token("a", "bc", "d"));
    }
}
