#!/usr/bin/env python3
"""What an idle deltadrop costs: wake-ups per second (summed over its threads), CPU, memory,
threads — with 1 feed and with N feeds, nothing arriving. For scripts/bench-idle.sh.

    python idle.py --bin target/release/deltadrop --feeds 10 --seconds 20 --dir bench-out/idle

A wake-up is a thread going from sleeping to running: each one ends in a context switch
(voluntary when it sleeps again, involuntary when preempted), so the sum over all threads of
/proc/PID/task/TID/status's two ctxt_switches counters, over the window, counts them. The
per-thread figures (by thread name) say who wakes. The window starts 2 s after the daemon
logged that it watches its inboxes (start-up work done).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def tasks(pid):
    """{tid: (name, switches)} for every thread of pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            sw = 0
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        sw += int(line.split()[1])
            out[tid] = (name, sw)
        except OSError:
            pass
    return out


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def site(root, feeds):
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    cfg = ['poll_interval = "5s"', "events = true", "[http]", 'listen = "127.0.0.1:0"']
    for i in range(feeds):
        cfg += ["[[feed]]", f'name = "f{i}"', f'inbox = "in/f{i}"', f'table = "lake/f{i}"',
                f'processed = "processed/f{i}"', f'rejected = "rejected/f{i}"']
    with open(os.path.join(root, "config.toml"), "w") as f:
        f.write("\n".join(cfg) + "\n")


def measure(binary, root, feeds, seconds):
    site(root, feeds)
    log_path = os.path.join(root, "daemon.log")
    log = open(log_path, "w")
    env = dict(os.environ, RUST_LOG="info")
    p = subprocess.Popen([binary, "run", "--config", "config.toml"], cwd=root, stderr=log, env=env)
    try:
        deadline = time.time() + 60
        while "watching" not in open(log_path).read():
            if p.poll() is not None or time.time() > deadline:
                sys.exit(f"daemon did not start:\n{open(log_path).read()}")
            time.sleep(0.05)
        time.sleep(2)
        t0, before, c0 = time.time(), tasks(p.pid), cpu_ticks(p.pid)
        time.sleep(seconds)
        t1, after, c1 = time.time(), tasks(p.pid), cpu_ticks(p.pid)
        rss = status_kib(p.pid, "VmRSS")
        span = t1 - t0
        by_name = {}
        for tid, (name, sw) in after.items():
            d = sw - before.get(tid, (name, 0))[1]
            by_name[name] = by_name.get(name, 0) + d
        total = sum(by_name.values())
        return {
            "feeds": feeds,
            "seconds": round(span, 1),
            "wakeups_per_s": round(total / span, 2),
            "cpu_percent": round(100 * (c1 - c0) / os.sysconf("SC_CLK_TCK") / span, 3),
            "rss_mib": round(rss / 1024, 1),
            "threads": len(after),
            "by_thread": {k: round(v / span, 2) for k, v in sorted(by_name.items(), key=lambda kv: -kv[1]) if v},
        }
    finally:
        p.terminate()
        p.wait(timeout=30)
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--feeds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    out = [measure(binary, os.path.join(a.dir, f"{n}-feeds"), n, a.seconds) for n in sorted({1, a.feeds})]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
