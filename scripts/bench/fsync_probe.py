#!/usr/bin/env python3
"""The disk's own fsync latency, for bench.sh's latency figure: `--count` times, 1 KiB appended to
a file in `--dir` and fsynced, `--interval-ms` apart (nothing else of ours running). A commit
waits on a few fsyncs (the intent, the log entry, the loaded index), so a drop → commit p99 can
be no better than this disk's tail: the issue's target is relative to it (BENCHMARKS.md).

    python fsync_probe.py --dir DIR [--count 300] [--interval-ms 10]

Prints one JSON object: count, p50_ms, p90_ms, p99_ms, max_ms.
"""
import argparse
import json
import os
import statistics
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--interval-ms", type=float, default=10.0)
    a = ap.parse_args()
    path = os.path.join(a.dir, "fsync-probe.bin")
    block = os.urandom(1024)
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(a.count):
            t0 = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            lat.append((time.perf_counter() - t0) * 1000.0)
            time.sleep(a.interval_ms / 1000.0)
    finally:
        os.close(fd)
        os.unlink(path)
    print(json.dumps({"count": len(lat), "p50_ms": round(statistics.median(lat), 3),
                      "p90_ms": round(pct(lat, 90), 3), "p99_ms": round(pct(lat, 99), 3),
                      "max_ms": round(max(lat), 3)}))


if __name__ == "__main__":
    main()
