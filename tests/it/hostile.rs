//! Hostile inputs: more than 40 files that real drop folders receive by accident or malice.
//! Each one ends with a clear outcome — loaded (bad rows quarantined), rejected with an error
//! file naming it, or left alone when it is not a regular file — the daemon stays up, and no
//! row is lost or duplicated.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::util::*;

enum Outcome {
    /// Rows with these ids load; this many rows go to quarantine.
    Loaded(Vec<String>, usize),
    /// Loaded earlier under another name: archived, nothing new.
    Duplicate,
    /// Rejected; the error file says this.
    Rejected(&'static str),
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    outcome: Outcome,
}

fn case(name: &str, bytes: impl Into<Vec<u8>>, outcome: Outcome) -> Case {
    Case {
        name: name.to_string(),
        bytes: bytes.into(),
        outcome,
    }
}

fn good(tag: &str, n: usize) -> (Vec<u8>, Outcome) {
    (
        sales_csv(tag, n).into_bytes(),
        Outcome::Loaded(ids(tag, n), 0),
    )
}

fn with_bad(tag: &str, n: usize, bad_lines: &[&str]) -> (Vec<u8>, Outcome) {
    let mut s = sales_csv(tag, n);
    for l in bad_lines {
        s.push_str(l);
        s.push('\n');
    }
    (
        s.into_bytes(),
        Outcome::Loaded(ids(tag, n), bad_lines.len()),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add =
        |name: &str, (bytes, outcome): (Vec<u8>, Outcome)| v.push(case(name, bytes, outcome));
    add("empty.csv", (vec![], Outcome::Rejected("empty file")));
    add(
        "only-bom.csv",
        (b"\xEF\xBB\xBF".to_vec(), Outcome::Rejected("empty file")),
    );
    add(
        "blank-lines.csv",
        (b"\n\n\r\n\n".to_vec(), Outcome::Rejected("empty file")),
    );
    add(
        "spaces.csv",
        (
            b"   \n   \n".to_vec(),
            Outcome::Rejected("missing required column(s)"),
        ),
    );
    add(
        "header-only.csv",
        (
            format!("{HEADER}\n").into_bytes(),
            Outcome::Loaded(vec![], 0),
        ),
    );
    add(
        "no-header.csv",
        (
            sales_csv("nh", 3)
                .lines()
                .skip(1)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
            Outcome::Rejected("missing required column(s)"),
        ),
    );
    add(
        "random-bytes.csv",
        (
            (0..50_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            Outcome::Rejected("not CSV text"),
        ),
    );
    add(
        "nul-bytes.csv",
        (
            b"sale_id\0,sold_at\n\0\0\0\n".to_vec(),
            Outcome::Rejected("not CSV text"),
        ),
    );
    add(
        "xlsx-renamed.csv",
        (
            [b"PK\x03\x04\x14\x00\x06\x00".to_vec(), vec![0u8; 200]].concat(),
            Outcome::Rejected("not CSV text"),
        ),
    );
    add(
        "html-page.csv",
        (
            b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n".to_vec(),
            Outcome::Rejected("missing required column(s)"),
        ),
    );
    add(
        "json.csv",
        (
            b"[{\"sale_id\": 1, \"total\": 2}]\n".to_vec(),
            Outcome::Rejected("missing required column(s)"),
        ),
    );
    add(
        "one-huge-line.csv",
        (
            [b"sale_id,".to_vec(), vec![b'x'; 3 << 20]].concat(),
            Outcome::Rejected("longer than max_line_bytes"),
        ),
    );
    add(
        "unbalanced-quote.csv",
        with_bad(
            "uq",
            3,
            &[
                "UQ9,\"2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,C1",
                "UQ10,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,C1",
            ],
        )
        .0
        .pipe(|b| (b, Outcome::Loaded(ids("uq", 3), 1))),
    );
    add(
        "mixed-line-ends.csv",
        (
            sales_csv("ml", 6).replacen('\n', "\r\n", 3).into_bytes(),
            Outcome::Loaded(ids("ml", 6), 0),
        ),
    );
    add(
        "cr-lf-bom.csv",
        (
            [
                b"\xEF\xBB\xBF".to_vec(),
                sales_csv("cb", 4).replace('\n', "\r\n").into_bytes(),
            ]
            .concat(),
            Outcome::Loaded(ids("cb", 4), 0),
        ),
    );
    add(
        "varying-columns.csv",
        with_bad(
            "vc",
            4,
            &[
                "VC9,2024-03-01T10:00:00Z,ST1",
                "VC10,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,C1,extra,more",
            ],
        ),
    );
    add(
        "ten-thousand-columns.csv",
        (
            (0..10_000)
                .map(|i| format!("c{i}"))
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes(),
            Outcome::Rejected("missing required column(s)"),
        ),
    );
    add(
        "duplicate-header.csv",
        (
            format!("{HEADER},sale_id\n").into_bytes(),
            Outcome::Rejected("appears twice"),
        ),
    );
    add(
        "latin1.csv",
        (
            sales_csv("l1", 3)
                .replace("pix", "cart\u{e3}o")
                .chars()
                .map(|c| c as u32 as u8)
                .collect::<Vec<u8>>(),
            Outcome::Loaded(ids("l1", 3), 0),
        ),
    );
    add(
        "utf16.csv",
        (
            {
                let text = sales_csv("u16", 3);
                let mut b = vec![0xFF, 0xFE];
                for u in text.encode_utf16() {
                    b.extend(u.to_le_bytes());
                }
                b
            },
            Outcome::Loaded(ids("u16", 3), 0),
        ),
    );
    add(
        "overflow.csv",
        with_bad(
            "of",
            2,
            &["OF9,2024-03-01T10:00:00Z,ST1,P1,99999999999999999999999,1.00,1.00,pix,C1"],
        ),
    );
    add(
        "bad-date.csv",
        with_bad(
            "bd",
            2,
            &["BD9,2024-02-30T10:00:00Z,ST1,P1,1,1.00,1.00,pix,C1"],
        ),
    );
    add(
        "too-precise.csv",
        with_bad(
            "tp",
            2,
            &["TP9,2024-03-01T10:00:00Z,ST1,P1,1,1.005,1.00,pix,C1"],
        ),
    );
    add(
        "required-null.csv",
        with_bad("rn", 2, &["RN9,,ST1,P1,1,1.00,1.00,pix,C1"]),
    );
    add(
        "long-field.csv",
        (
            {
                let mut s = sales_csv("lf", 1);
                s.push_str(&format!(
                    "LF-big,2024-03-01T10:00:00Z,ST1,P1,1,1.00,1.00,pix,{}\n",
                    "z".repeat(200_000)
                ));
                s.into_bytes()
            },
            Outcome::Loaded(vec!["lf-0".into(), "LF-big".into()], 0),
        ),
    );
    add(
        "quoted-header.csv",
        (
            sales_csv("qh", 2)
                .replacen("sale_id", "\"sale_id\"", 1)
                .into_bytes(),
            Outcome::Loaded(ids("qh", 2), 0),
        ),
    );
    add(
        "signs.csv",
        (
            {
                format!("{HEADER}\nSG1,2024-03-01T10:00:00Z,ST1,P1,+5,-0.00,+1.50,pix,C1\n")
                    .into_bytes()
            },
            Outcome::Loaded(vec!["SG1".into()], 0),
        ),
    );
    add("my file with spaces.csv", good("sp", 2));
    add("vendas-ação-日本.csv", good("un", 2));
    add("line\nbreak.csv", good("nl", 2));
    add("-rf.csv", good("rf", 2));
    add("UPPER.CSV", good("up", 2));
    add("dup-a.csv", good("dup", 3));
    add(
        "dup-b.csv",
        (sales_csv("dup", 3).into_bytes(), Outcome::Duplicate),
    );
    add(
        "good.csv.gz",
        (
            gzip(sales_csv("gz", 3).as_bytes()),
            Outcome::Loaded(ids("gz", 3), 0),
        ),
    );
    add(
        "gzip-named-plain.csv",
        (
            gzip(sales_csv("gp", 2).as_bytes()),
            Outcome::Loaded(ids("gp", 2), 0),
        ),
    );
    add("plain-named.csv.gz", good("pg", 2));
    add(
        "corrupt.csv.gz",
        (
            [b"\x1f\x8b\x08\x00".to_vec(), vec![0xAB; 300]].concat(),
            Outcome::Rejected("corrupt or truncated"),
        ),
    );
    add(
        "truncated.csv.gz",
        (
            gzip(sales_csv("tr", 500).as_bytes())[..400].to_vec(),
            Outcome::Rejected("corrupt or truncated"),
        ),
    );
    add(
        "corrupt.csv.zst",
        (
            [b"\x28\xb5\x2f\xfd".to_vec(), vec![0x11; 100]].concat(),
            Outcome::Rejected("corrupt or truncated"),
        ),
    );
    add(
        "trailing-delims.csv",
        (
            sales_csv("td", 2).replace('\n', ",\n").into_bytes(),
            Outcome::Loaded(ids("td", 2), 0),
        ),
    );
    v
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[test]
fn hostile_inputs_each_end_clearly_and_nothing_is_lost() {
    let d = Dir::with_feed(
        "",
        "max_file_bytes = 1073741824\n[feed.csv]\nmax_line_bytes = 1048576",
    );
    fs::create_dir_all(d.inbox()).unwrap();
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut daemon = d.spawn();
    daemon.wait_ready();

    // Not regular files: never followed, never read, never moved.
    let inbox = d.inbox();
    std::os::unix::fs::symlink("/etc/passwd", inbox.join("symlink-out.csv")).unwrap();
    std::os::unix::fs::symlink("../outside.csv", inbox.join("symlink-rel.csv")).unwrap();
    fs::write(d.path("outside.csv"), sales_csv("never", 1)).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(inbox.join("fifo.csv"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let _socket = std::os::unix::net::UnixListener::bind(inbox.join("socket.csv")).unwrap();
    fs::create_dir_all(inbox.join("directory.csv")).unwrap();
    let skipped = [
        "symlink-out.csv",
        "symlink-rel.csv",
        "fifo.csv",
        "socket.csv",
        "directory.csv",
    ];
    // A sparse 10 GB file: bounded by max_file_bytes, never read.
    let sparse = fs::File::create(inbox.join("sparse-10g.csv")).unwrap();
    sparse.set_len(10 << 30).unwrap();
    drop(sparse);

    // dup-a first, so that dup-b is the duplicate.
    for c in &cases {
        match std::str::from_utf8(&c.bytes) {
            Ok(text) => d.drop_file(&c.name, text),
            Err(_) => {
                // Binary content: written as bytes (drop_file takes text), renamed in whole —
                // an empty placeholder first would be a file of its own to the daemon.
                let tmp = inbox.join(format!(".{}.tmp", c.name.replace('\n', "_")));
                fs::write(&tmp, &c.bytes).unwrap();
                fs::rename(&tmp, inbox.join(&c.name)).unwrap();
            }
        }
        if c.name == "dup-a.csv" {
            assert!(
                wait_until(DEADLINE, || list_names(&d.path("processed"))
                    .contains(&"dup-a.csv".to_string())),
                "{}",
                daemon.log()
            );
        }
    }
    // Everything regular leaves the inbox; the rest stays as it was.
    let expected_left: Vec<String> = {
        let mut v: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert!(
        wait_until(DEADLINE, || {
            daemon.assert_alive();
            d.inbox_files() == expected_left
        }),
        "left in inbox: {:?}\n{}",
        d.inbox_files(),
        daemon.log()
    );
    daemon.assert_alive();
    assert!(fs::read_to_string(d.path("outside.csv"))
        .unwrap()
        .contains("never-0"));

    let rejected = list_names(&d.path("rejected"));
    let processed = list_names(&d.path("processed"));
    let mut expected_ids = Vec::new();
    let mut expected_bad = 0;
    for c in &cases {
        match &c.outcome {
            Outcome::Rejected(why) => {
                let err = d.path("rejected").join(format!("{}.error.txt", c.name));
                let text = fs::read_to_string(&err).unwrap_or_else(|_| {
                    panic!(
                        "{} was not rejected: {rejected:?}\n{}",
                        c.name.escape_debug(),
                        daemon.log()
                    )
                });
                assert!(text.contains(why), "{}: {text}", c.name.escape_debug());
                assert!(
                    text.contains(&c.name),
                    "{}: the error names the file",
                    c.name.escape_debug()
                );
            }
            Outcome::Loaded(ids, bad) => {
                assert!(
                    processed.contains(&c.name),
                    "{} not processed: {processed:?}\nrejected {rejected:?}",
                    c.name.escape_debug()
                );
                expected_ids.extend(ids.iter().cloned());
                expected_bad += bad;
            }
            Outcome::Duplicate => assert!(processed.contains(&c.name)),
        }
    }
    let why = fs::read_to_string(d.path("rejected/sparse-10g.csv.error.txt")).unwrap();
    assert!(why.contains("more than max_file_bytes"), "{why}");
    assert_exactly_once(&d.rows(), &expected_ids);
    assert_eq!(
        read_quarantine(&d.path("lake/_quarantine/sales")).len(),
        expected_bad
    );
    assert!(daemon
        .log()
        .contains("dup-b.csv has the same content as 'dup-a.csv'"));
    assert!(daemon.terminate().success());
    let _ = Path::new("");
}

/// A file name that is not UTF-8 (windows-1252 bytes from an old SFTP client or an SMB share)
/// is renamed to its windows-1252 reading once quiet and loaded; a file already holding that
/// name is never replaced.
#[test]
fn a_name_that_is_not_utf8_is_renamed_and_loaded() {
    use std::os::unix::ffi::OsStrExt;
    let d = Dir::with_feed("", "");
    fs::create_dir_all(d.inbox()).unwrap();
    let mut daemon = d.spawn();
    daemon.wait_ready();
    d.drop_file("relatório.csv", &sales_csv("utf8", 2));
    let latin1 = d
        .inbox()
        .join(std::ffi::OsStr::from_bytes(b"relat\xf3rio.csv"));
    fs::write(&latin1, sales_csv("latin1", 3)).unwrap();
    d.wait_for_rows(5, &mut daemon);
    let mut loaded: Vec<String> = d.rows().into_iter().map(|r| r.sale_id).collect();
    loaded.sort();
    assert_eq!(loaded, [ids("latin1", 3), ids("utf8", 2)].concat());
    // Files are archived right after their commit: wait for both.
    assert!(
        wait_until(DEADLINE, || list_names(&d.path("processed")).len() == 2),
        "{:?}",
        list_names(&d.path("processed"))
    );
    let processed = list_names(&d.path("processed"));
    assert!(
        processed.iter().all(|n| n.contains("relatório")),
        "{processed:?}"
    );
    assert!(
        daemon.log().contains("is not UTF-8: renamed to"),
        "{}",
        daemon.log()
    );
    assert!(d.inbox_files().is_empty());
}

/// Files that will never be taken are named once each — not at every poll — with what to do:
/// a spreadsheet, a file of another extension, a symbolic link.
#[test]
fn files_never_taken_are_named_once() {
    let d = Dir::new("[http]\nenabled = false");
    let inbox = d.inbox();
    fs::create_dir_all(&inbox).unwrap();
    fs::write(inbox.join("report.xlsx"), b"PK\x03\x04").unwrap();
    fs::write(inbox.join("notes.txt"), b"notes").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", inbox.join("link.csv")).unwrap();
    // A temp name: the daemon notes it at debug level on every poll, which counts the polls.
    fs::write(inbox.join("up.csv.tmp"), b"").unwrap();
    let mut daemon = d.spawn();
    assert!(
        wait_until(DEADLINE, || daemon
            .log()
            .matches("ignoring up.csv.tmp")
            .count()
            >= 3),
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    for (name, why) in [
        (
            "report.xlsx",
            "a workbook, and this feed does not read workbooks",
        ),
        ("notes.txt", "not a .csv/.csv.gz/.csv.zst file"),
        ("link.csv", "a symbolic link: links are never followed"),
    ] {
        let said = format!("{}: {why}", inbox.join(name).display());
        assert_eq!(log.matches(&said).count(), 1, "{name}\n{log}");
    }
    daemon.assert_alive();
}
