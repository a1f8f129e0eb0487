//! Replays the fuzz corpus (fuzz/corpus/<target>/*, kept in the repository, plus any crash
//! reproducers in fuzz/regressions/<target>/*) through the same entry points the fuzz targets
//! call, so that `cargo test` guards every input the fuzzer ever kept, without the fuzz
//! toolchain.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            // A running fuzzer may replace corpus files under us.
            let Ok(data) = std::fs::read(&f) else {
                continue;
            };
            run(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn the_ingest_corpus_replays_without_a_panic() {
    let n = replay("ingest", deltadrop::ingest::fuzz::ingest_bytes);
    assert!(n >= 40, "only {n} corpus inputs");
}

#[test]
fn the_config_corpus_replays_without_a_panic() {
    let n = replay("config", deltadrop::ingest::fuzz::config_text);
    assert!(n >= 2, "only {n} corpus inputs");
}
