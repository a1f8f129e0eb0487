#!/usr/bin/env python3
"""Drives a running deltadrop for scripts/bench-latency.sh.

latency: renames pre-generated files into the inbox one at a time and times each drop until
         the Delta version holding it exists (drop → committed).
burst:   renames every staged file into the inbox at once and times until all are committed
         (the inbox empty and every file in processed/).
Prints one JSON object.
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
            raise TimeoutError("deltadrop did not commit in time")
        time.sleep(step)


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def latest_version(log):
    vs = [int(n[:20]) for n in os.listdir(log) if n.endswith(".json") and n[:20].isdigit()]
    return max(vs) if vs else -1


def latency(args):
    log = os.path.join(args.table, "_delta_log")
    wait_for(lambda: os.path.isdir(log), 60, 0.05)
    version = latest_version(log)
    files = sorted(os.listdir(args.staging))
    lat = []
    for name in files:
        target = os.path.join(log, f"{version + 1:020d}.json")
        t0 = time.perf_counter()
        os.rename(os.path.join(args.staging, name), os.path.join(args.inbox, name))
        wait_for(lambda: os.path.exists(target), 60, 0.0002)
        lat.append((time.perf_counter() - t0) * 1000.0)
        version += 1
        time.sleep(args.gap_ms / 1000.0)
    return {
        "mode": "latency",
        "files": len(lat),
        "p50_ms": round(statistics.median(lat), 2),
        "p90_ms": round(pct(lat, 90), 2),
        "p99_ms": round(pct(lat, 99), 2),
        "max_ms": round(max(lat), 2),
        "mean_ms": round(statistics.mean(lat), 2),
        # Flat commit cost: the first and last windows of a long run should match.
        "window": min(200, len(lat)),
        "p50_first_ms": round(statistics.median(lat[: min(200, len(lat))]), 2),
        "p50_last_ms": round(statistics.median(lat[-min(200, len(lat)) :]), 2),
        "last_version": version,
    }


def burst(args):
    files = sorted(os.listdir(args.staging))
    log = os.path.join(args.table, "_delta_log")
    wait_for(lambda: os.path.isdir(log), 60, 0.05)
    v0 = latest_version(log)
    t0 = time.perf_counter()
    for name in files:
        os.rename(os.path.join(args.staging, name), os.path.join(args.inbox, name))
    t_dropped = time.perf_counter() - t0
    wait_for(
        lambda: not os.listdir(args.inbox) and len(os.listdir(args.processed)) >= len(files),
        600,
        0.01,
    )
    secs = time.perf_counter() - t0
    return {
        "mode": "burst",
        "files": len(files),
        "rows": len(files) * args.rows,
        "seconds": round(secs, 3),
        "rename_seconds": round(t_dropped, 3),
        "files_per_s": round(len(files) / secs, 1),
        "rows_per_s": round(len(files) * args.rows / secs, 1),
        "commits": latest_version(log) - v0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["latency", "burst"])
    ap.add_argument("--staging", required=True)
    ap.add_argument("--inbox", required=True)
    ap.add_argument("--processed", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--rows", type=int, default=0)
    ap.add_argument("--gap-ms", type=float, default=20.0)
    args = ap.parse_args()
    out = latency(args) if args.mode == "latency" else burst(args)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
