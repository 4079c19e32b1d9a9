//! Refresh-token parsing: the shape check (prefix, length, checksum) and the
//! MAC check take any string without panicking, and a token the secret
//! accepts re-derives to exactly itself.
#![no_main]

use latchkey::tokens::refresh::{parse_unverified, RefreshSecret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_unverified(token);
    let secret = RefreshSecret::new(&[7u8; 32]);
    if let Ok(parsed) = secret.parse(token) {
        assert_eq!(secret.token(parsed.sid, parsed.generation), token);
    }
});
