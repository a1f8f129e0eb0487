#!/usr/bin/env python3
"""Drops files into a contender's inbox for scripts/bench.sh and times them until committed, the same
way for every contender (deltadrop, the Python script, Spark): only the Delta log is watched, never a
contender's own bookkeeping.

    python drops.py latency --staging DIR --inbox DIR --table PATH [--gap-ms 20] [--poll-ms 1]
    python drops.py burst   --staging DIR --inbox DIR --table PATH --rows-per-file N [--poll-ms 1]

latency: each staged file is renamed into the inbox alone; the clock stops when the next commit file
         `_delta_log/<version+1>.json` exists (polled every --poll-ms). One file per commit, so the
         version it lands in is known. Per-drop milliseconds are in "ms" for growth windows.
burst:   every staged file is renamed in at once; the clock stops when the commits since then hold
         all their rows (numRecords of the Add actions in each new `<version>.json`), i.e. when every
         row is visible to a reader.
Both wait first for version 0 (each contender creates the table at start), then drop --warmup files
(default 1) one at a time, untimed. Prints one JSON object. scripts/bench-latency.sh (deltadrop alone)
uses it too.
"""
import argparse
import json
import os
import statistics
import sys
import time


def wait_for(pred, timeout, step):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not committed within {timeout} s")
        time.sleep(step)


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def latest_version(log):
    vs = [int(n[:20]) for n in os.listdir(log) if n.endswith(".json") and n[:20].isdigit()]
    return max(vs) if vs else -1


def commit_path(log, version):
    return os.path.join(log, f"{version:020d}.json")


def wait_table(table, timeout):
    log = os.path.join(table, "_delta_log")
    wait_for(lambda: os.path.exists(commit_path(log, 0)), timeout, 0.01)
    return log


def drop_one(args, log, version, name):
    """Renames one file in and waits for the next version: returns the milliseconds taken."""
    target = commit_path(log, version + 1)
    t0 = time.perf_counter()
    os.rename(os.path.join(args.staging, name), os.path.join(args.inbox, name))
    wait_for(lambda: os.path.exists(target), args.timeout, args.poll_ms / 1000.0)
    return (time.perf_counter() - t0) * 1000.0


def warm_up(args, log):
    """Drops the first --warmup files one at a time, untimed: a long-running contender's first file
    pays one-time costs (Spark's first micro-batch, Python's lazy imports) that are not its steady
    state. Returns the remaining files and the version reached."""
    files = sorted(os.listdir(args.staging))
    version = latest_version(log)
    for name in files[: args.warmup]:
        drop_one(args, log, version, name)
        version += 1
    return files[args.warmup :], version


def latency(args):
    log = wait_table(args.table, args.timeout)
    files, version = warm_up(args, log)
    lat = []
    for name in files:
        lat.append(drop_one(args, log, version, name))
        version += 1
        # A pause between drops, so each file is its own commit and the contender is idle when the
        # next one lands (what one-at-a-time drops look like in production).
        time.sleep(args.gap_ms / 1000.0)
    window = min(200, len(lat))
    return {
        "files": len(lat),
        "p50_ms": round(statistics.median(lat), 2),
        "p90_ms": round(pct(lat, 90), 2),
        "p99_ms": round(pct(lat, 99), 2),
        "max_ms": round(max(lat), 2),
        "mean_ms": round(statistics.mean(lat), 2),
        "last_version": version,
        # Flat commit cost: the first and last windows of a long run should match.
        "window": window,
        "p50_first_ms": round(statistics.median(lat[:window]), 2),
        "p50_last_ms": round(statistics.median(lat[-window:]), 2),
        "ms": [round(x, 3) for x in lat],
    }


def commit_rows(path):
    rows = 0
    with open(path, "rb") as f:
        for line in f:
            action = json.loads(line)
            add = action.get("add")
            if add and add.get("dataChange", True):
                stats = add.get("stats")
                if not stats:
                    raise SystemExit(f"{path}: an Add action without stats; cannot count rows")
                rows += json.loads(stats)["numRecords"]
    return rows


def burst(args):
    log = wait_table(args.table, args.timeout)
    files, v0 = warm_up(args, log)
    want = len(files) * args.rows_per_file
    t0 = time.perf_counter()
    for name in files:
        os.rename(os.path.join(args.staging, name), os.path.join(args.inbox, name))
    t_renamed = time.perf_counter() - t0
    rows, version = 0, v0
    deadline = time.monotonic() + args.timeout
    while rows < want:
        nxt = commit_path(log, version + 1)
        if os.path.exists(nxt):
            rows += commit_rows(nxt)
            version += 1
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"burst: {rows} of {want} rows committed after {args.timeout} s")
        time.sleep(args.poll_ms / 1000.0)
    secs = time.perf_counter() - t0
    return {
        "files": len(files),
        "rows": rows,
        "seconds": round(secs, 3),
        "rename_seconds": round(t_renamed, 3),
        "files_per_s": round(len(files) / secs, 1),
        "rows_per_s": round(rows / secs, 1),
        "commits": version - v0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["latency", "burst"])
    ap.add_argument("--staging", required=True)
    ap.add_argument("--inbox", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--rows-per-file", type=int, default=0)
    ap.add_argument("--gap-ms", type=float, default=20.0)
    # 1 ms: fine enough for a 20 ms target, coarse enough not to steal a core from the contender.
    ap.add_argument("--poll-ms", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--warmup", type=int, default=1, help="untimed one-at-a-time drops first")
    args = ap.parse_args()
    out = latency(args) if args.mode == "latency" else burst(args)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
