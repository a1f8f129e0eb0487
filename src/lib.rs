//! deltadrop: a daemon that turns a drop folder of CSV files into a Delta Lake table, exactly once.
//!
//! One module per pipeline stage, in the order a file travels (ARCHITECTURE.md follows one
//! through them, function by function):
//!
//! `watch` (events + poll → complete files) → `job` (the values that cross channels) → `pool`
//! (workers) → `ingest` (CSV → typed Arrow batches, bad rows apart) → `delta` (one committer per
//! table, exactly once with `state`) → `archive` (where every file's trip ends: processed/,
//! rejected/, a retry) and `state` (intents, the loaded index, locks).
//!
//! Beside them: `config` (the TOML file), `schema` (table columns), `counters` (the one set of
//! per-feed counters), `tracker` (which file is where), `shutdown` (the stop signal), `service`
//! (telling systemd or Windows' service manager: ready, stopping, the watchdog fed by the
//! committers), `maintain` (compaction, vacuum, checkpoints), `ops` (status endpoint, metrics,
//! inspect), `daemon` (the run loop: `daemon::run`) and `cli` (the command line, and the Windows
//! service front end that installs and starts the run loop).
//!
//! No re-exports at the root: a module that named `crate::run` would import the run loop
//! through this file, a circle the module paths do not show.

pub(crate) mod archive;
// The API: the binary calls `cli::main`; the fuzz targets and the corpus replay test call
// `ingest::fuzz`. Everything else is the crate's own, so the compiler reports what is unused.
pub mod cli;
pub(crate) mod config;
pub(crate) mod counters;
pub(crate) mod daemon;
pub(crate) mod delta;
pub(crate) mod error;
pub mod ingest;
pub(crate) mod job;
pub(crate) mod maintain;
pub(crate) mod ops;
pub(crate) mod pool;
pub(crate) mod readiness;
pub(crate) mod remote;
pub(crate) mod requeue;
pub(crate) mod schema;
pub(crate) mod service;
pub(crate) mod shutdown;
pub(crate) mod state;
pub(crate) mod tracker;
pub(crate) mod watch;
