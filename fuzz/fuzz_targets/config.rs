//! Any text as a config file: parsed and validated, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deltadrop::ingest::fuzz::config_text(data);
});
