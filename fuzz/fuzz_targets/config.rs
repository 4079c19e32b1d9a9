//! Configuration overlays: any TOML text is loaded over the defaults and
//! either validated or refused with an error naming the problem, never a
//! panic (so a bad config file stops start-up with a message).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = latchkey::config::Settings::from_toml(text) {
        assert!(!err.to_string().is_empty());
    }
});
