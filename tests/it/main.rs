//! Every integration test, in one binary: deltalake and the rest are linked once, and a new
//! test module cannot be left out of a hand-kept list of targets (Cargo finds `tests/it/` by
//! itself). One module per room or behaviour; each drives the real `deltadrop` binary through
//! the harness in [`util`].
//!
//! Run one room with a filter on its module path, e.g. `cargo test --test it -- corrections::`;
//! the ignored ones (they need Azurite, moto, Chromium or Wine, or run long) with
//! `cargo test --test it -- --ignored cloud::` (see `.ci/run`).

// A failed expectation in a test is a panic by design (Cargo.toml's [lints] are for the library).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

mod chaos;
mod cloud;
mod corrections;
mod daemon;
mod faults;
mod fidelity;
mod formats;
mod fuzz_corpus;
mod hostile;
mod maintain;
mod model;
mod names;
mod operate;
mod page;
mod readiness;
mod realworld;
mod remote;
mod requeue;
mod wine;
