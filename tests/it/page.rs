//! The operator's page and systemd readiness. The page is rendered by a real headless Chromium
//! (Debian's `chromium`; `.ci/run` installs it) against a live daemon with good files, bad rows
//! and rejected files whose names and raw lines hold HTML: what the page shows is read back from
//! the DOM Chromium built, and a screenshot is kept. systemd's notify socket is played by a
//! Unix datagram socket of the test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// A file name and a raw line that would run script if the page wrote them as markup.
const EVIL_NAME: &str = "<img src=x onerror=document.body.dataset.pwned=1>.csv";
const EVIL_SCRIPT_NAME: &str = "<script>document.body.dataset.pwned=2<script>.csv";
const EVIL_CUSTOMER: &str = "<script>document.body.dataset.pwned=3</script>";

/// A daemon with a status endpoint, after: one good file, one with a bad row whose raw text is
/// HTML (under an evil name), one rejected file (binary, evil name).
fn live_site() -> (Dir, Daemon, String) {
    // Maintenance every second and a checkpoint every 2 versions, for the page to show them.
    let d = Dir::with_feed(
        "[http]\nlisten = \"127.0.0.1:0\"",
        "maintenance_interval = \"1s\"\ncheckpoint_interval = 2",
    );
    let (mut daemon, addr) = d.spawn_with_status();
    daemon.wait_ready();
    d.drop_file("good.csv", &sales_csv("g", 40));
    // Committed apart from the next file, so the table reaches version 2 and its checkpoint:
    // dropped together, the two files may land as one commit (version 1, no checkpoint).
    d.wait_for_rows(40, &mut daemon);
    let mut bad = sales_csv("b", 3);
    bad.push_str(&format!(
        "b-bad,2024-03-01T10:00:00Z,ST1,P1,x,1.00,1.00,pix,{EVIL_CUSTOMER}\n"
    ));
    d.drop_file(EVIL_SCRIPT_NAME, &bad);
    d.drop_file(EVIL_NAME, "\u{0}\u{1}\u{2} not text");
    d.wait_for_rows(43, &mut daemon);
    let rejected = wait_until(DEADLINE, || d.path("rejected").join(EVIL_NAME).exists());
    assert!(rejected, "{}", daemon.log());
    (d, daemon, addr)
}

#[test]
fn the_page_is_one_self_contained_file_and_its_data_is_json() {
    let (_d, _daemon, addr) = live_site();
    let resp = ureq::get(&format!("http://{addr}/")).call().expect("GET /");
    let csp = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = http_get(&addr, "/");
    // Nothing fetched from anywhere: no external script, style, font or image.
    for needle in ["<link", " src=", "@import", "url(", "https://"] {
        assert!(!html.contains(needle), "the page loads {needle:?}");
    }
    let p: serde_json::Value = serde_json::from_str(&http_get(&addr, "/page.json")).unwrap();
    let f = &p["feeds"][0];
    assert_eq!(f["name"], "sales");
    assert_eq!(f["recent"]["state"]["state"], "running", "{f:#}");
    assert_eq!(f["rows_committed"], 43);
    assert_eq!(f["recent"]["files_last_minute"], 2, "{f:#}");
    assert_eq!(f["recent"]["rows_last_hour"], 43, "{f:#}");
    assert_eq!(f["recent"]["rejected"][0]["name"], EVIL_NAME);
    let bad = &f["recent"]["bad_rows"][0];
    assert_eq!(bad["file"], EVIL_SCRIPT_NAME);
    assert_eq!(bad["line"], 5);
    assert_eq!(bad["column"], "quantity");
    assert!(
        bad["raw"].as_str().unwrap().contains(EVIL_CUSTOMER),
        "{bad}"
    );
    let commits = f["recent"]["commits"].as_array().unwrap();
    assert_eq!(
        commits
            .iter()
            .map(|c| c["rows"].as_u64().unwrap())
            .sum::<u64>(),
        43
    );
    let seconds = f["recent"]["seconds"].as_array().unwrap();
    assert_eq!(
        seconds
            .iter()
            .map(|s| s["files"].as_u64().unwrap())
            .sum::<u64>(),
        2
    );
    assert!(
        seconds.iter().all(|s| s["latency_n"] == s["files"]),
        "every committed file has its latency: {seconds:?}"
    );
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "no Chromium at {} (Debian: apt-get install chromium; or set CHROMIUM)",
        path.display()
    );
    path
}

/// Headless Chromium on `url` with `args`; its stdout. A fresh profile each time, and none of
/// its background connections (this machine's network is closed).
fn headless(profile: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            // Time for the page's script to fetch page.json and draw.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text Chromium shows for the DOM `dom` (tags dropped, entities decoded).
fn visible_text(dom: &str) -> String {
    let body = dom.split("<body").nth(1).unwrap_or(dom);
    let body = body.split("<script").next().unwrap_or(body);
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&nbsp;", " ")
}

#[test]
#[ignore = "needs Debian's chromium: .ci/run installs it (cargo test --test it -- --ignored page::)"]
fn the_page_shows_a_live_daemon_in_headless_chromium() {
    let (d, _daemon, addr) = live_site();
    let maintained = wait_until(DEADLINE, || {
        let p: serde_json::Value = serde_json::from_str(&http_get(&addr, "/page.json")).unwrap();
        !p["feeds"][0]["recent"]["maintenance"].is_null()
            && !p["feeds"][0]["recent"]["checkpoint"].is_null()
    });
    assert!(maintained, "no maintenance run or checkpoint to show");
    let url = format!("http://{addr}/");
    let profile = d.path("chromium-profile");
    let dom = headless(&profile, &url, &["--dump-dom"]);
    assert!(dom.contains("data-state=\"running\""), "{dom}");
    // Script from a file never ran, and no element came from a file name or a raw line.
    assert!(
        !dom.contains("data-pwned"),
        "script from a file was run:\n{dom}"
    );
    assert!(
        !dom.contains("<img"),
        "markup from a file name was rendered:\n{dom}"
    );
    let text = visible_text(&dom);
    for shown in [
        "sales",
        "running",
        "table version",
        "Last hour",
        "files per second",
        "found → committed latency",
        "Last commits",
        "Rejected files",
        EVIL_NAME,
        "not CSV text",
        "Latest quarantined rows",
        EVIL_SCRIPT_NAME,
        EVIL_CUSTOMER,
        "'x' is not an integer",
        "quantity",
        "Maintenance",
        "last run",
        "vacuum deleted",
        "last checkpoint at version",
        "43 rows",
    ] {
        assert!(
            text.contains(shown),
            "the page does not show {shown:?}:\n{text}"
        );
    }
    // The chart has its bars and latency points, with their labels.
    assert!(dom.contains("<svg"), "{dom}");
    assert!(dom.contains("files/s</title>"), "{dom}");
    assert!(dom.contains("ms found → committed</title>"), "{dom}");

    // A screenshot for the CI artifacts.
    let shot = std::env::var_os("PAGE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("page.png"));
    let _ = fs::remove_file(&shot);
    headless(
        &profile,
        &url,
        &[
            "--window-size=1280,1400",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let png = fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    eprintln!("page: screenshot in {}", shot.display());
}

/// systemd's side of `Type=notify`: READY=1 once the inbox is watched, WATCHDOG=1 with
/// STATUS= while the committer loop runs, STOPPING=1 at SIGTERM.
#[cfg(unix)]
#[test]
fn systemd_hears_ready_watchdog_status_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    let d = Dir::new("[http]\nenabled = false");
    let sock_path = d.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut daemon = d.spawn_env(
        "config.toml",
        &[
            ("NOTIFY_SOCKET".into(), sock_path.display().to_string()),
            // WatchdogSec=1s: the committer must ping at least every second.
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ],
    );
    let mut heard: Vec<String> = Vec::new();
    let listen_until = |what: &str, heard: &mut Vec<String>| {
        let ok = wait_until(DEADLINE, || {
            let mut buf = [0u8; 4096];
            if let Ok(n) = sock.recv(&mut buf) {
                heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            heard.iter().filter(|m| m.contains(what)).count() >= 2
                || (what != "WATCHDOG=1" && heard.iter().any(|m| m.contains(what)))
        });
        assert!(ok, "never heard {what}: {heard:?}");
    };
    listen_until("READY=1", &mut heard);
    let ready = heard.iter().position(|m| m.contains("READY=1")).unwrap();
    assert!(
        daemon.log().contains("watching"),
        "READY=1 before the inboxes were watched"
    );
    assert!(
        heard[ready].contains("STATUS=sales: 0 waiting"),
        "{heard:?}"
    );
    d.drop_file("a.csv", &sales_csv("a", 5));
    d.wait_for_rows(5, &mut daemon);
    // Idle, the committer's loop still comes round: at least two pings.
    listen_until("WATCHDOG=1", &mut heard);
    let pings: Vec<_> = heard.iter().filter(|m| m.contains("WATCHDOG=1")).collect();
    assert!(
        pings.iter().all(|m| m.contains("STATUS=sales: ")),
        "{pings:?}"
    );
    assert!(daemon.terminate().success());
    listen_until("STOPPING=1", &mut heard);
}
