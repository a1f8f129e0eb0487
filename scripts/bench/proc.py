#!/usr/bin/env python3
"""Runs one contender process for scripts/bench.sh and measures it the same way whatever it is:
wall time, start → ready (a log line), and peak memory of its whole process tree.

    python proc.py [--ready REGEX] [--ready-file F] [--stop-after-ready] [--log F] [--stdout F]
                   [--out F] [--cwd DIR] -- COMMAND...

- The command runs in its own session (process group), so stopping it stops Spark's JVM too.
- ready: the first line of its output (stderr, and stdout unless --stdout) matching REGEX; the time
  from spawn to that line is `ready_ms`, and --ready-file is written then (bench.sh waits on it).
- memory: every 20 ms the tree under the command is walked (/proc/PID/task/*/children);
  `peak_rss_kib` is the larger of the biggest sum of VmRSS over the tree at one sample and every
  process's own VmHWM (see Sampler). deltadrop and the Python script are one process each (their
  VmHWM, exact); Spark is the Python driver plus the JVM. The command's own ru_maxrss (wait4) is a
  floor for a process that exits between two samples.
- SIGTERM (or SIGINT) to this script is forwarded to the command's process group; it then waits
  for the command and still writes its JSON (--out, else stdout).
"""
import argparse
import ctypes
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time


def tree(pid):
    """(pid, parent pid) of the process and all its descendants."""
    out, todo = [], [(pid, None)]
    while todo:
        p, parent = todo.pop()
        out.append((p, parent))
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend((int(c), p) for c in f.read().split())
        except OSError:
            pass  # exited meanwhile
    return out


def memory_kib(pid):
    """(name, VmRSS, VmHWM) in KiB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            name, rss, hwm = "?", None, None
            for line in f:
                if line.startswith("Name:"):
                    name = line.split(None, 1)[1].strip()
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
            return (name, rss, hwm) if rss is not None and hwm is not None else None
    except OSError:
        return None


_SYS_KCMP = {"x86_64": 312, "aarch64": 272}.get(platform.machine())
_KCMP_VM = 1
_libc = ctypes.CDLL(None, use_errno=True)


def shares_memory(a, b):
    """True if a and b have one address space: a child between vfork (or clone with CLONE_VM) and
    exec, e.g. the JVM starting `chmod` through bash for Hadoop's local file system. Such a child
    shows its parent's memory as its own. kcmp(2); False where it is not available."""
    if _SYS_KCMP is None:
        return False
    return _libc.syscall(_SYS_KCMP, a, b, _KCMP_VM, 0, 0) == 0


class Sampler:
    """Peak memory of a process tree, sampled: the largest sum of VmRSS over the tree's processes at
    one sample (Spark: the Python driver plus the JVM at the same moment), and each process's own
    VmHWM (exact for a single process, whatever the sampling misses). A child sharing its parent's
    address space is left out of both."""

    def __init__(self, root):
        self.root = root
        self.max_sum = 0
        self.hwm = {}  # pid -> (name, latest VmHWM; exec resets it)

    def sample(self):
        total = 0
        for p, parent in tree(self.root):
            if parent is not None and shares_memory(p, parent):
                continue
            m = memory_kib(p)
            if m is None:
                continue
            name, rss, hwm = m
            total += rss
            self.hwm[p] = (name, hwm)
        self.max_sum = max(self.max_sum, total)

    def peak(self):
        return max([self.max_sum] + [k for _, k in self.hwm.values()])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ready")
    ap.add_argument("--ready-file")
    ap.add_argument("--ready-timeout", type=float, default=300.0)
    ap.add_argument("--stop-after-ready", action="store_true")
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("--stdout")
    ap.add_argument("--out")
    ap.add_argument("--pid-file", help="written with the command's pid (= its process group id)")
    ap.add_argument("--cwd")
    ap.add_argument("--interval-ms", type=float, default=20.0)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command")

    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())

    pattern = re.compile(args.ready) if args.ready else None
    ready = threading.Event()
    ready_ms = [None]
    t0 = time.perf_counter()
    stdout = open(args.stdout, "wb") if args.stdout else subprocess.PIPE
    child = subprocess.Popen(
        cmd,
        cwd=args.cwd,
        stdout=stdout,
        stderr=subprocess.PIPE if args.stdout else subprocess.STDOUT,
        start_new_session=True,
    )
    pipe = child.stderr if args.stdout else child.stdout
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{child.pid}\n")

    def reader():
        # Reads the pipe directly: the ready time is when the line is written, not when a file
        # poll notices it. Draining it also keeps a chatty command from blocking on a full pipe.
        with open(args.log, "wb") as log:
            for line in pipe:
                log.write(line)
                log.flush()
                if pattern and not ready.is_set() and pattern.search(line.decode("utf-8", "replace")):
                    ready_ms[0] = (time.perf_counter() - t0) * 1000.0
                    ready.set()
                    if args.ready_file:
                        with open(args.ready_file, "w") as f:
                            f.write(f"{ready_ms[0]:.3f}\n")

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    sampler = Sampler(child.pid)
    term_sent = None
    status, rusage = None, None
    while True:
        sampler.sample()
        pid, st, ru = os.wait4(child.pid, os.WNOHANG)
        if pid:
            status, rusage = st, ru
            break
        now = time.perf_counter()
        want_stop = stop.is_set() or (args.stop_after_ready and ready.is_set())
        if pattern and not ready.is_set() and now - t0 > args.ready_timeout:
            print(f"proc: not ready after {args.ready_timeout} s: {' '.join(cmd)}", file=sys.stderr)
            want_stop = True
        if want_stop and term_sent is None:
            term_sent = now
            os.killpg(child.pid, signal.SIGTERM)
        elif term_sent is not None and now - term_sent > 60:
            os.killpg(child.pid, signal.SIGKILL)
        time.sleep(args.interval_ms / 1000.0)
    wall = time.perf_counter() - t0
    # Whatever the command left behind in its group (Spark's JVM if the driver died first).
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    rt.join(5)
    code = os.waitstatus_to_exitcode(status)
    peak = max(sampler.peak(), rusage.ru_maxrss)
    result = {
        "exit": code,
        "stopped": term_sent is not None,
        "wall_s": round(wall, 4),
        "ready_ms": round(ready_ms[0], 2) if ready_ms[0] is not None else None,
        "peak_rss_kib": peak,
        "max_sum_rss_kib": sampler.max_sum,
        "procs_hwm": sorted(f"{n}:{k}" for n, k in sampler.hwm.values()),
    }
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    # A command that failed by itself (not stopped by us) fails the step.
    if term_sent is None and code != 0:
        sys.exit(1)
    if pattern and ready_ms[0] is None:
        sys.exit(1)


if __name__ == "__main__":
    main()
