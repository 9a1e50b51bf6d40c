//! Profile parsing and validation never panic on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let loader = l2sec_profile::Loader { credentials_dir: None, euid: 0 };
        if let Ok(p) = loader.parse(text, Path::new("fuzz.toml")) {
            // A valid profile renders to TOML that parses again.
            let _ = loader.parse(&p.render_redacted(), Path::new("fuzz.toml"));
        }
    }
});
