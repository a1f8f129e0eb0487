//! Status endpoint: a small HTTP server (tiny_http) on 127.0.0.1 by default, answering `/` (the
//! operator's page, with `/page.json`), `/health`, `/status` (JSON) and `/metrics`
//! (Prometheus), and the client side of
//! `deltadrop status`. The bound address is written to `state_dir/http.addr` so that the client
//! finds a daemon started with port 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::metrics::{self, Status};
use super::page;
use crate::config::{Config, FeedConfig};
use crate::counters::{Counters, Event};
use crate::tracker::Tracker;

pub struct Server {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    addr_file: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.addr_file);
    }
}

/// Starts the endpoint unless `[http] enabled = false`. A port already in use is a warning:
/// ingestion matters more than the endpoint.
pub fn start(
    cfg: &Config,
    feeds: Vec<Arc<FeedConfig>>,
    counters: Arc<Counters>,
    tracker: Tracker,
) -> Option<Server> {
    if !cfg.http.enabled {
        return None;
    }
    let server = match tiny_http::Server::http(&cfg.http.listen) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            log::warn!(
                "status endpoint off: cannot listen on {}: {e} (set [http] listen to a free address, or enabled = false)",
                cfg.http.listen
            );
            return None;
        }
    };
    let addr = match server.server_addr().to_ip() {
        Some(a) => a.to_string(),
        None => cfg.http.listen.clone(),
    };
    let addr_file = cfg.state_dir.join("http.addr");
    if let Err(e) = crate::state::write_atomic(&addr_file, addr.as_bytes()) {
        log::warn!("{e}");
    }
    log::info!("status page on http://{addr}/ (and /status, /metrics, /health)");
    let srv = server.clone();
    let thread = std::thread::Builder::new()
        .name("status".into())
        .spawn(move || serve(&srv, &addr, &feeds, &counters, &tracker))
        .ok();
    Some(Server {
        server,
        thread,
        addr_file,
    })
}

/// Inline style and script (the page is one file), data from this daemon only.
const PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn serve(
    server: &tiny_http::Server,
    addr: &str,
    feeds: &[Arc<FeedConfig>],
    counters: &Counters,
    tracker: &Tracker,
) {
    let tables: Vec<String> = feeds.iter().map(|f| f.table_url.to_string()).collect();
    for req in server.incoming_requests() {
        // The live figures, counted when asked.
        for f in feeds {
            if let Some(c) = counters.feed(&f.name) {
                c.record(Event::Backlog {
                    waiting: crate::watch::inbox_files(f).len() as u64,
                    in_flight: tracker.busy_under(&f.inbox) as u64,
                });
            }
        }
        let path = req.url().split('?').next().unwrap_or("").to_string();
        let (code, body, ctype) = match path.as_str() {
            "/" | "/index.html" => (200, page::HTML.to_string(), "text/html; charset=utf-8"),
            "/page.json" => (
                200,
                serde_json::to_string(&page::data(counters, feeds, addr)).unwrap_or_default(),
                "application/json",
            ),
            "/health" => (200, "ok\n".to_string(), "text/plain; charset=utf-8"),
            "/metrics" => (
                200,
                metrics::prometheus(counters),
                metrics::PROMETHEUS_CONTENT_TYPE,
            ),
            "/status" => (
                200,
                serde_json::to_string_pretty(&metrics::status(counters, &tables))
                    .unwrap_or_default(),
                "application/json",
            ),
            _ => (
                404,
                "not found: try /, /status, /metrics or /health\n".to_string(),
                "text/plain",
            ),
        };
        let mut resp = tiny_http::Response::from_string(body).with_status_code(code);
        let mut headers = vec![
            ("Content-Type", ctype),
            ("X-Content-Type-Options", "nosniff"),
        ];
        if ctype.starts_with("text/html") {
            // The page loads nothing from anywhere but this daemon, and cannot be framed.
            headers.push(("Content-Security-Policy", PAGE_CSP));
        }
        for (k, v) in headers {
            if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                resp = resp.with_header(h);
            }
        }
        let _ = req.respond(resp);
    }
}

/// Where a running daemon listens: the address it wrote, else the configured one.
pub fn address(cfg: &Config) -> String {
    read_addr(&cfg.state_dir.join("http.addr")).unwrap_or_else(|| cfg.http.listen.clone())
}

fn read_addr(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Asks the running daemon for its status.
pub fn fetch(cfg: &Config) -> Result<Status, String> {
    let addr = address(cfg);
    let url = format!("http://{addr}/status");
    let mut resp = ureq::get(&url).call().map_err(|e| {
        format!("deltadrop is not running, or its status endpoint is off ({url}: {e})")
    })?;
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))?;
    serde_json::from_str(&body).map_err(|e| format!("{url}: unexpected answer: {e}"))
}

/// The human-readable `deltadrop status`.
pub fn render(s: &Status) -> String {
    let mut out = format!(
        "deltadrop {} (pid {}), up {}\n",
        s.version,
        s.pid,
        humantime::format_duration(std::time::Duration::from_secs(s.uptime_seconds as u64))
    );
    for f in &s.feeds {
        out.push_str(&format!(
            "\nfeed {}\n  state:        {}\n  table:        {} (version {})\n  backlog:      {} file(s) waiting, {} in flight\n  last commit:  {}\n  this run:     {} commit(s), {} file(s), {} rows, {} quarantined, {} warned\n  problems:     {} rejected, {} duplicate(s), {} transient failure(s)\n",
            f.name,
            f.state,
            f.table,
            f.table_version,
            f.backlog,
            f.in_flight,
            f.last_commit_at.as_deref().unwrap_or("none in this run"),
            f.commits,
            f.files_committed,
            f.rows_committed,
            f.rows_quarantined,
            f.rows_warned,
            f.files_rejected,
            f.files_duplicate,
            f.transient_failures
        ));
        // Loud, but only when it happened: a writer was still going when its file was taken.
        if f.files_grown > 0 {
            out.push_str(&format!(
                "  grew after load: {} file(s), {} byte(s) (last: {}): the log says where each rest went\n",
                f.files_grown,
                f.bytes_grown,
                f.last_grown.as_deref().unwrap_or("?")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;

    #[test]
    fn the_status_page_shows_what_the_counters_say() {
        let c = Counters::new(["sales".to_string()]);
        let f = c.feed("sales").unwrap();
        f.record(Event::FileCommitted {
            rows: 6,
            bytes: 60,
            quarantined: 1,
            warned: 0,
            latency: None,
        });
        f.record(Event::FileRejected {
            name: "x.csv".into(),
            reason: "not CSV".into(),
        });
        f.record(Event::Grown {
            name: "late.csv".into(),
            bytes: 42,
        });
        f.record(Event::Backlog {
            waiting: 3,
            in_flight: 1,
        });
        let s = metrics::status(&c, &["file:///lake/sales/".to_string()]);
        let text = render(&s);
        for line in [
            "state:        starting",
            "table:        file:///lake/sales/ (version 0)",
            "backlog:      3 file(s) waiting, 1 in flight",
            "last commit:  none in this run",
            "this run:     0 commit(s), 1 file(s), 6 rows, 1 quarantined, 0 warned",
            "problems:     1 rejected, 0 duplicate(s), 0 transient failure(s)",
            "grew after load: 1 file(s), 42 byte(s) (last: late.csv (+42 bytes))",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        // What `status --json` reads back is what was sent.
        let json = serde_json::to_string(&s).unwrap();
        let back: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(back.feeds[0].rows_committed, 6);
    }
}
