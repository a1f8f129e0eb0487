//! Any bytes, under a few dialect/encoding settings chosen by the first byte, through the whole
//! ingest path (decompression, decoding, splitting, values, quarantine bookkeeping) and through
//! schema inference. Nothing may panic; every outcome is rows, bad rows or a reasoned error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    deltadrop::ingest::fuzz::ingest_bytes(data);
});
