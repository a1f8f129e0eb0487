//! The `run --once` progress bar: files, rows, MB/s and ETA, read from the run's counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::counters::Counters;

/// The bar's thread; dropping this stops it (after a last update).
pub(super) struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Draws a bar towards `total` files until dropped.
pub(super) fn start(total: u64, counters: Arc<Counters>) -> Progress {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let started = Instant::now();
        loop {
            let s = counters.totals();
            let mb = s.bytes_committed as f64 / 1e6;
            let secs = started.elapsed().as_secs_f64().max(0.001);
            bar.set_position(s.files_done());
            bar.set_message(format!("{} rows  {:.1} MB/s", s.rows_committed, mb / secs));
            if flag.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish();
    });
    Progress {
        stop,
        thread: Some(thread),
    }
}
