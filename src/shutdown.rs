//! Shutdown: the one stop signal of the daemon. Ctrl-C, SIGTERM, `on_bad_row = "fail"`, a
//! committer's fatal error and a feed's first file all stop a pipeline through it.
//!
//! Every thread that waits on something else too selects on [`Shutdown::signal`]: a channel on
//! which nothing is ever sent and that disconnects when the stop is triggered, so that all of
//! them wake at once (a message would wake only the one that took it). A pipeline runs under a
//! [`Shutdown::child`] of the daemon's signal: stopping the daemon stops it, and stopping it
//! (to restart it with a new feed) leaves the daemon running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    triggered: AtomicBool,
    /// Why the run failed, when it stops because of an error (`on_bad_row = "fail"`).
    failure: Mutex<Option<String>>,
    /// Dropped when triggered: that disconnects `signal`.
    tx: Mutex<Option<Sender<()>>>,
    signal: Receiver<()>,
    children: Mutex<Vec<Weak<Inner>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        let (tx, signal) = crossbeam_channel::bounded(0);
        Shutdown {
            inner: Arc::new(Inner {
                triggered: AtomicBool::new(false),
                failure: Mutex::new(None),
                tx: Mutex::new(Some(tx)),
                signal,
                children: Mutex::new(Vec::new()),
            }),
        }
    }
}

impl Shutdown {
    /// Stops: no new files are taken, in-flight commits finish. Idempotent.
    pub fn trigger(&self) {
        self.inner.trigger();
    }

    /// Stops because of an error: the run returns it.
    pub fn fail(&self, reason: impl Into<String>) {
        {
            let mut f = self.inner.failure.lock().unwrap_or_else(|e| e.into_inner());
            f.get_or_insert_with(|| reason.into());
        }
        self.trigger();
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// The error that stopped the run, if one did.
    pub fn failure(&self) -> Option<String> {
        self.inner
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Disconnects when the stop is triggered; nothing is ever received on it. For `select!`.
    pub fn signal(&self) -> &Receiver<()> {
        &self.inner.signal
    }

    /// Sleeps up to `d`; true if the stop was triggered meanwhile (or before).
    pub fn wait_timeout(&self, d: Duration) -> bool {
        self.is_triggered()
            || !matches!(
                self.inner.signal.recv_timeout(d),
                Err(RecvTimeoutError::Timeout)
            )
    }

    /// Blocks until the stop is triggered.
    pub fn wait(&self) {
        let _ = self.inner.signal.recv();
    }

    /// A signal that is triggered with this one, and can also be triggered alone.
    pub fn child(&self) -> Shutdown {
        let child = Shutdown::default();
        self.inner
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&child.inner));
        // Triggered before the child was registered: the child starts triggered.
        if self.is_triggered() {
            child.trigger();
        }
        child
    }
}

impl Inner {
    fn trigger(&self) {
        if self.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|e| e.into_inner()));
        for c in children.iter().filter_map(Weak::upgrade) {
            c.trigger();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_waiter_wakes_and_children_follow_their_parent() {
        let daemon = Shutdown::default();
        let round = daemon.child();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let r = round.clone();
                std::thread::spawn(move || r.wait_timeout(Duration::from_secs(30)))
            })
            .collect();
        assert!(!round.wait_timeout(Duration::from_millis(1)));
        daemon.trigger();
        for w in waiters {
            assert!(w.join().unwrap());
        }
        assert!(round.is_triggered());
        assert!(daemon.child().is_triggered());
    }

    #[test]
    fn a_child_stops_alone_and_keeps_its_reason() {
        let daemon = Shutdown::default();
        let round = daemon.child();
        round.fail("bad row");
        round.fail("second reason is not kept");
        assert!(round.is_triggered() && !daemon.is_triggered());
        assert_eq!(round.failure().as_deref(), Some("bad row"));
        assert_eq!(daemon.failure(), None);
    }
}
