//! The strict form parser: any bytes are parsed or refused, never a panic.
//! What it accepts has only non-empty names and values, at most one field
//! per `&`-separated pair, and parsing the same bytes again gives the same
//! fields.
#![no_main]

use latchkey::http::extract::parse_form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(fields) = parse_form(data) {
        let pairs = data.split(|&b| b == b'&').count();
        assert!(fields.len() <= pairs);
        assert!(fields.iter().all(|(k, v)| !k.is_empty() && !v.is_empty()));
        assert_eq!(parse_form(data).ok(), Some(fields));
    }
});
