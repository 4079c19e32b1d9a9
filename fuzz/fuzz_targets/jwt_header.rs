//! The checks that run before any signature work: size bound, three
//! segments, base64url, JSON header, alg pinned to RS256, typ. Any string is
//! accepted or refused without panicking.
#![no_main]

use latchkey::tokens::jwt::{peek_header, ACCESS_TOKEN_TYP, MAX_TOKEN_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if peek_header(token, ACCESS_TOKEN_TYP).is_ok() {
        assert!(token.len() <= MAX_TOKEN_BYTES);
        assert_eq!(token.split('.').count(), 3);
    }
});
