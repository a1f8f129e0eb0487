//! Model test: random sequences of what a drop folder receives — new files, the same content
//! again (a duplicate), a name sent again with new content (a correction under
//! `on_resend = "replace"`), files with a bad row — some runs killed at a crash point of the
//! commit path (`DELTADROP_CRASH_AT`, see `crash_point`) and restarted, each run the real
//! binary's `run --once`. After every run the table must equal a reference model exactly: each
//! name's latest loaded version's rows, every row once; the quarantine table exactly the bad rows
//! of every version loaded; the inbox empty. A crashed run must have left the table as its point
//! says (committed or not).
//!
//! 12 sequences by default; `PROPTEST_CASES=200 cargo test --test it -- model::` for more. A
//! failure is shrunk to a short sequence and kept in `proptest-regressions/` to replay.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use proptest::sample::Index;

use crate::util::*;

/// One file put in the inbox.
#[derive(Debug, Clone)]
enum Drop {
    /// A new name with new content: `rows` good rows, and a bad one if `bad`.
    New { rows: usize, bad: bool },
    /// The content of a version loaded earlier again, under its name or a new one.
    Again { of: Index, same_name: bool },
    /// A name dropped earlier, with new content.
    Resend { of: Index, rows: usize, bad: bool },
}

/// Files dropped together, then one `run --once`; with a single file, maybe killed at a
/// crash point and restarted.
#[derive(Debug, Clone)]
struct Step {
    drops: Vec<Drop>,
    crash: Option<&'static str>,
}

/// A file's content and what the model expects of it.
#[derive(Debug, Clone)]
struct Version {
    name: String,
    bytes: Vec<u8>,
    hash: String,
    ids: Vec<String>,
    /// Physical lines of its bad rows.
    bad_lines: Vec<i64>,
}

/// What the table, the quarantine table and the inbox must hold.
#[derive(Default)]
struct Model {
    /// Name → the sale ids of its latest loaded version.
    table: BTreeMap<String, Vec<String>>,
    /// (file, line, file hash) of every bad row of every loaded version.
    quarantine: Vec<(String, i64, String)>,
    /// Content hashes loaded: the same content again is a duplicate.
    loaded: HashSet<String>,
    /// Every version loaded, for `Again`.
    versions: Vec<Version>,
    /// Every name dropped, for `Resend`.
    names: Vec<String>,
    /// Fresh file names and row tags.
    next: usize,
}

impl Model {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// New content under `name`: `rows` rows with fresh ids, a bad row in the middle if `bad`.
    fn version(&mut self, name: String, rows: usize, bad: bool) -> Version {
        let tag = self.fresh("t");
        let text = sales_csv(&tag, rows);
        let mut lines: Vec<&str> = text.lines().collect();
        let mut bad_lines = Vec::new();
        let bad_row = format!("{tag}-bad,2024-03-01T10:00:00Z,ST1,P1,many,1.00,1.00,pix,C1");
        if bad {
            // Line 1 is the header: the bad row lands on physical line 2 + its position.
            let at = 1 + rows / 2;
            lines.insert(at, &bad_row);
            bad_lines.push(at as i64 + 1);
        }
        let bytes = (lines.join("\n") + "\n").into_bytes();
        Version {
            name,
            hash: blake3::hash(&bytes).to_hex().to_string(),
            bytes,
            ids: ids(&tag, rows),
            bad_lines,
        }
    }

    /// The file a drop puts in the inbox.
    fn file_for(&mut self, drop: &Drop) -> Version {
        match drop {
            Drop::Again { of, same_name } if !self.versions.is_empty() => {
                let mut v = self.versions[of.index(self.versions.len())].clone();
                if !same_name {
                    v.name = self.fresh("copy") + ".csv";
                }
                v
            }
            Drop::Resend { of, rows, bad } if !self.names.is_empty() => {
                let name = self.names[of.index(self.names.len())].clone();
                self.version(name, *rows, *bad)
            }
            Drop::New { rows, bad } | Drop::Resend { rows, bad, .. } => {
                let name = self.fresh("f") + ".csv";
                self.version(name, *rows, *bad)
            }
            // Nothing loaded yet to repeat: a new file.
            Drop::Again { .. } => {
                let name = self.fresh("f") + ".csv";
                self.version(name, 2, false)
            }
        }
    }

    fn is_duplicate(&self, v: &Version) -> bool {
        self.loaded.contains(&v.hash)
    }

    /// A version committed: its rows replace its name's earlier version's (or are new), its bad
    /// rows join the quarantine table. The same content again changes nothing.
    fn commit(&mut self, v: &Version, quarantine_too: bool) {
        if !self.loaded.insert(v.hash.clone()) {
            return;
        }
        self.table.insert(v.name.clone(), v.ids.clone());
        if quarantine_too {
            self.commit_quarantine(v);
        }
        self.versions.push(v.clone());
    }

    fn commit_quarantine(&mut self, v: &Version) {
        for line in &v.bad_lines {
            self.quarantine
                .push((v.name.clone(), *line, v.hash.clone()));
        }
    }

    /// Does a run of this one file reach `point`? Not for a duplicate (nothing is committed);
    /// the change point only for a correction; the quarantine point only with bad rows.
    fn reaches(&self, v: &Version, point: &str) -> bool {
        if self.is_duplicate(v) {
            return false;
        }
        match point {
            "after_change_written" => self.table.contains_key(&v.name),
            "after_quarantine_commit" => !v.bad_lines.is_empty(),
            _ => true,
        }
    }

    /// (table landed, quarantine landed) when the process died at `point`.
    fn landed_at(point: &str) -> (bool, bool) {
        match point {
            "after_intent" | "after_change_written" => (false, false),
            "after_commit" | "after_record" => (true, false),
            _ => (true, true),
        }
    }

    fn rows(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self
            .table
            .iter()
            .flat_map(|(name, ids)| ids.iter().map(move |id| (name.clone(), id.clone())))
            .collect();
        rows.sort();
        rows
    }

    fn quarantined(&self) -> Vec<(String, i64, String)> {
        let mut q = self.quarantine.clone();
        q.sort();
        q
    }
}

fn folder() -> Dir {
    Dir::with_feed("", "on_resend = \"replace\"")
}

/// (file, sale id) of every row of the table, sorted: a row twice shows twice.
fn table_rows_of(d: &Dir) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = d
        .rows()
        .into_iter()
        .map(|r| (r.source_file, r.sale_id))
        .collect();
    rows.sort();
    rows
}

fn quarantine_of(d: &Dir) -> Vec<(String, i64, String)> {
    let mut q: Vec<(String, i64, String)> = read_quarantine(&d.path("lake/_quarantine/sales"))
        .into_iter()
        .map(|q| (q.source_file, q.line_number, q.file_hash))
        .collect();
    q.sort();
    q
}

/// The table and quarantine table against the model; `what` names the moment.
fn check(d: &Dir, m: &Model, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(table_rows_of(d), m.rows(), "table rows {}", what);
    prop_assert_eq!(quarantine_of(d), m.quarantined(), "quarantine {}", what);
    Ok(())
}

/// `run --once` with the process set to abort at `point`; whether it did.
fn run_crashing_at(d: &Dir, point: &str) -> bool {
    let out = d
        .assert_cmd()
        .args(["run", "--once", "--config", "config.toml"])
        .env("DELTADROP_CRASH_AT", point)
        .timeout(DEADLINE)
        .output()
        .expect("run deltadrop");
    let err = String::from_utf8_lossy(&out.stderr);
    let crashed = err.contains(&format!("DELTADROP_CRASH_AT={point}: aborting"));
    assert!(
        crashed != out.status.success(),
        "{point}: exit {:?}\n{err}",
        out.status
    );
    crashed
}

fn run_step(d: &Dir, m: &mut Model, step: &Step, n: usize) -> Result<(), TestCaseError> {
    let mut pending: BTreeMap<String, Version> = BTreeMap::new();
    for drop in &step.drops {
        let v = m.file_for(drop);
        d.drop_file(&v.name, &String::from_utf8_lossy(&v.bytes));
        if !m.names.contains(&v.name) {
            m.names.push(v.name.clone());
        }
        pending.insert(v.name.clone(), v);
    }
    let single = (pending.len() == 1)
        .then(|| pending.values().next().cloned())
        .flatten();
    if let (Some(point), Some(v)) = (step.crash, single) {
        let expected = m.reaches(&v, point);
        let crashed = run_crashing_at(d, point);
        prop_assert_eq!(crashed, expected, "step {}: crash at {}", n, point);
        if crashed {
            // What the commit had done when it died is in the tables already.
            let (table, quarantine) = Model::landed_at(point);
            let mut after = Model {
                table: m.table.clone(),
                quarantine: m.quarantine.clone(),
                ..Model::default()
            };
            if table {
                after.commit(&v, quarantine);
            }
            check(d, &after, &format!("after step {n} died at {point}"))?;
        }
    }
    // The (re)start: whatever a crash left is settled, every file taken.
    d.run_once();
    for v in pending.values() {
        m.commit(v, true);
    }
    check(d, m, &format!("after step {n}"))?;
    prop_assert_eq!(
        d.inbox_files(),
        Vec::<String>::new(),
        "inbox after step {}",
        n
    );
    Ok(())
}

fn a_drop() -> impl Strategy<Value = Drop> {
    prop_oneof![
        3 => (0..=4usize, any::<bool>())
            .prop_map(|(rows, bad)| Drop::New { rows, bad: bad || rows == 0 }),
        2 => (any::<Index>(), any::<bool>())
            .prop_map(|(of, same_name)| Drop::Again { of, same_name }),
        2 => (any::<Index>(), 0..=4usize, any::<bool>())
            .prop_map(|(of, rows, bad)| Drop::Resend { of, rows, bad: bad || rows == 0 }),
    ]
}

fn a_step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![3 => prop::collection::vec(a_drop(), 1..=1), 1 => prop::collection::vec(a_drop(), 2..=3)],
        prop::option::weighted(0.5, prop::sample::select(&CRASH_POINTS[..])),
    )
        .prop_map(|(drops, crash)| Step { drops, crash })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: number_from_env("PROPTEST_CASES", 12) as u32,
        // Each case runs the binary several times: shrink within bounds.
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn drops_duplicates_corrections_bad_rows_and_crashes_match_the_model(
        steps in prop::collection::vec(a_step(), 1..=6)
    ) {
        let d = folder();
        let mut m = Model::default();
        for (n, step) in steps.iter().enumerate() {
            run_step(&d, &mut m, step, n)?;
        }
    }
}
