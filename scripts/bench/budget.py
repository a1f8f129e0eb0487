#!/usr/bin/env python3
"""The CPU a running deltadrop spends on a load, for scripts/bench-budget.sh, and the check of those
figures against bench/budget.toml.

    python budget.py measure --measure large|burst --bin BIN --site DIR --rows-per-file N [--timeout S]
    python budget.py calibrate --file FILE
    python budget.py check --budget bench/budget.toml --results FILE.jsonl [--machine JSON]
    python budget.py write --budget bench/budget.toml --results FILE.jsonl --machine JSON

measure: DIR is a site (scripts/lib/bench-data.sh `new_site`) whose staging/ holds the files, the
first in name order a warm-up. The daemon (`BIN run`) is started in DIR; once it is watching, the
warm-up file is dropped and loaded (a first file pays one-time costs that a running daemon has
behind it). Then its CPU time is read, every other staged file renamed into the inbox at once,
and the CPU time read again when the outcome is complete: every row committed (drops.py burst),
every file archived to processed/, and the daemon quiet (its CPU time unchanged for --quiet-ms, so
work after the commit — archive renames, a checkpoint — is counted). CPU time is utime + stime of
/proc/PID/stat: the whole process, every thread, including threads that have exited (the encoder
thread of a large file). The daemon's start-up and stop are outside the window; what it spends
idle inside it (≈0.05 % of a core, BENCHMARKS.md "Idle") is below the figures' resolution (10 ms).
Prints one JSON object: cpu_s, wall_s, files, rows, bytes and the burst's own figures.

calibrate: the CPU time (user + sys of the child) `gzip -1` takes to compress FILE, the machine's
speed at this moment. CPU time per unit of work is steady on one machine but not between machines
of the same kind: CI's first run of the budget measured 33 % and 20 % more than where the budget
was set, with the same binary and nothing of its own beside it. bench-budget.sh runs this before
every measure, so a slower (or more contended) machine is seen by the same runs that are judged.

check: the median of the results' runs for each figure against the budget scaled by the machine's
speed (the calibration's median here over the one recorded with the budget); exits 1 when one is
more than the tolerance over it. write: the medians become the budget (machine, date and the
calibration with them).
"""
import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import tomllib

import drops
from idle import cpu_ticks

TICK = os.sysconf("SC_CLK_TCK")

# figure -> (what it is, unit, the measure it comes from, how it is computed from one run)
FIGURES = {
    "large_file_cpu_ms_per_mb": (
        "a ~100 MB sales file into the running daemon", "ms CPU per MB", "large",
        lambda r: 1000.0 * r["cpu_s"] / (r["bytes"] / 1e6)),
    "burst_cpu_ms_per_file": (
        "a burst of 5,000 × 100-row files into the running daemon", "ms CPU per file", "burst",
        lambda r: 1000.0 * r["cpu_s"] / r["files"]),
}


# The machine's speed: gzip -1 over the calibration file, ms CPU per MB.
REFERENCE = ("reference_gzip_cpu_ms_per_mb", "calibration",
             lambda r: 1000.0 * r["cpu_s"] / (r["bytes"] / 1e6))


def wait_until(pred, timeout, what, step=0.005):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"budget: {what} within {timeout} s")
        time.sleep(step)


def csv_count(folder):
    return sum(1 for n in os.listdir(folder) if n.endswith(".csv"))


def user_sys_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def wait_quiet(pid, quiet_ms, timeout):
    """Returns the CPU ticks once they have not moved for quiet_ms."""
    deadline = time.monotonic() + timeout
    last, since = cpu_ticks(pid), time.monotonic()
    while time.monotonic() - since < quiet_ms / 1000.0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"budget: the daemon did not go quiet within {timeout} s")
        time.sleep(0.01)
        now = cpu_ticks(pid)
        if now != last:
            last, since = now, time.monotonic()
    return last


def measure(a):
    site = os.path.abspath(a.site)
    inbox, processed, staging = (os.path.join(site, d) for d in ("inbox", "processed", "staging"))
    table = os.path.join(site, "lake", "sales")
    log_path = os.path.join(site, "deltadrop.log")
    env = dict(os.environ, RUST_LOG="info")  # the default level, whatever the caller's shell says
    with open(log_path, "wb") as log:
        p = subprocess.Popen([a.bin, "run", "--config", "config.toml"], cwd=site, stdout=log,
                             stderr=subprocess.STDOUT, env=env)
    try:
        def ready():
            if p.poll() is not None:
                raise SystemExit(f"budget: deltadrop exited ({p.returncode}); its log: {log_path}")
            with open(log_path, "rb") as f:
                return b"watching" in f.read()
        wait_until(ready, a.timeout, "deltadrop did not log 'watching'", 0.01)
        args = argparse.Namespace(staging=staging, inbox=inbox, table=table, timeout=a.timeout,
                                  poll_ms=a.poll_ms, rows_per_file=a.rows_per_file, warmup=1)
        log_dir = drops.wait_table(table, a.timeout)
        files, _ = drops.warm_up(args, log_dir)
        wait_until(lambda: csv_count(processed) == 1, a.timeout, "the warm-up file was not archived")
        sizes = sum(os.path.getsize(os.path.join(staging, n)) for n in files)
        c0 = wait_quiet(p.pid, a.quiet_ms, a.timeout)
        u0, s0 = user_sys_ticks(p.pid)
        t0 = time.perf_counter()
        args.warmup = 0
        result = drops.burst(args)
        want = 1 + len(files)
        wait_until(lambda: csv_count(processed) == want, a.timeout,
                   f"not every file was archived ({csv_count(processed)} of {want} in processed/)")
        c1 = wait_quiet(p.pid, a.quiet_ms, a.timeout)
        u1, s1 = user_sys_ticks(p.pid)
        # The quiet window itself is not work: the wall time ends where the CPU time last moved.
        wall = time.perf_counter() - t0 - a.quiet_ms / 1000.0
        with open(f"/proc/{p.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    out = {"measure": a.measure, "cpu_s": (c1 - c0) / TICK, "user_s": (u1 - u0) / TICK,
           "sys_s": (s1 - s0) / TICK, "wall_s": round(wall, 3), "files": len(files),
           "rows": result["rows"], "bytes": sizes, "commits": result["commits"],
           "peak_rss_mib": round(hwm / 1024, 1)}
    json.dump(out, sys.stdout)
    print()


def calibrate(a):
    """gzip -1 over the file, its CPU time from the children's rusage (gzip is the only child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(a.file, "rb") as src, open(os.devnull, "wb") as sink:
        subprocess.run(["gzip", "-1", "-c"], stdin=src, stdout=sink, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    json.dump({"measure": "calibration", "cpu_s": round(cpu, 4), "bytes": os.path.getsize(a.file)}, sys.stdout)
    print()


def load_results(path):
    """{measure: [run, ...]} from the JSON lines bench-budget.sh appends (one per run, `measure` key)."""
    runs = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs.setdefault(r["measure"], []).append(r)
    return runs


def medians(runs):
    out = {}
    for key, (_, _, measure_name, fn) in FIGURES.items():
        values = [fn(r) for r in runs.get(measure_name, [])]
        if not values:
            raise SystemExit(f"budget: no {measure_name} runs in the results")
        out[key] = (statistics.median(values), values)
    return out


def reference(runs):
    """(median, values) of the calibration runs, or None when there were none."""
    key, measure_name, fn = REFERENCE
    values = [fn(r) for r in runs.get(measure_name, [])]
    return (statistics.median(values), values) if values else None


def speed_scale(budget, runs):
    """How much more CPU the same work takes here than where the budget was set, and why."""
    kept = budget.get("reference", {}).get(REFERENCE[0])
    here = reference(runs)
    if kept is None or here is None:
        return 1.0, "budget: no calibration to compare machines with: the budget is taken as it is."
    value, values = here
    scale = value / float(kept)
    runs_text = ", ".join(f"{v:.4g}" for v in values)
    return scale, (f"budget: this machine's speed: gzip -1 took {value:.4g} ms CPU per MB (median of "
                   f"{len(values)}: {runs_text}), {float(kept):.4g} where the budget was set: the budget "
                   f"is scaled by {scale:.3f}.")


def check(a):
    with open(a.budget, "rb") as f:
        budget = tomllib.load(f)
    runs = load_results(a.results)
    figures, limits = medians(runs), budget["budget"]
    scale, scale_line = speed_scale(budget, runs)
    print(scale_line)
    tolerance = float(limits.get("tolerance", 0.15))
    machine = json.loads(a.machine) if a.machine else {}
    kept = budget.get("machine", {})
    if machine and (machine.get("cpu") != kept.get("cpu") or machine.get("cores") != kept.get("cores")):
        print(f"budget: note: the budget was set on {kept.get('cpu')} ({kept.get('cores')} cores), this is "
              f"{machine.get('cpu')} ({machine.get('cores')} cores): only the calibration below relates "
              "the two, so the comparison is rougher than on one machine.")
    failed = []
    for key, (value, values) in figures.items():
        what, unit, _, _ = FIGURES[key]
        kept = float(limits[key])
        limit = kept * scale
        change = value / limit - 1.0
        runs_text = ", ".join(f"{v:.4g}" for v in values)
        scaled = f" × {scale:.3f} = {limit:.4g} here" if scale != 1.0 else ""
        line = (f"{what}: {value:.4g} {unit} (median of {len(values)}: {runs_text}); "
                f"budget {kept:.4g}{scaled} ({change:+.1%})")
        if change > tolerance:
            failed.append(key)
            print(f"budget: FAIL {line}, more than {tolerance:.0%} over.")
        elif change < -tolerance:
            print(f"budget: ok {line}. More than {tolerance:.0%} under: lower `{key}` in {a.budget} to "
                  f"{value / scale:.4g} in the commit that made it faster (scripts/bench-budget.sh --write), so "
                  "the next regression is caught at once.")
        else:
            print(f"budget: ok {line}")
    if failed:
        print(f"""budget: the hot path got more expensive ({", ".join(failed)}). Either
  - find where the CPU goes: `scripts/bench-budget.sh --runs 1 --keep` keeps the sites in
      {a.sites}/
    build with line tables (`cargo build --release`), move a site's staging/*.csv into its inbox/,
    run `perf record -g -- target/release/deltadrop run --once --config SITE/config.toml`, then
    `perf report`, and compare with the profiles in BENCHMARKS.md; or
  - if the cost is deliberate (a feature worth it), raise the figure in
      {a.budget}
    in the same commit (`scripts/bench-budget.sh --write` sets it to what was measured) and say
    why in the commit message.""")
        sys.exit(1)


def write(a):
    runs = load_results(a.results)
    figures, ref = medians(runs), reference(runs)
    if ref is None:
        raise SystemExit("budget: no calibration runs in the results: the budget needs one")
    m = json.loads(a.machine)
    tolerance = 0.15
    if os.path.exists(a.budget):
        with open(a.budget, "rb") as f:
            tolerance = float(tomllib.load(f).get("budget", {}).get("tolerance", tolerance))
    lines = [
        "# The hot path's CPU cost, held by scripts/bench-budget.sh in CI (.ci/run): more than",
        "# `tolerance` over a figure fails the run. Lower a figure in the commit that makes deltadrop",
        "# faster; raise one only in the commit that makes it slower, saying why. Written by",
        "# `scripts/bench-budget.sh --write` (medians of its runs); how steady the figures are on this",
        "# machine: BENCHMARKS.md, \"Cost budget\".",
        "",
        "[machine]",
        f"cpu = {json.dumps(m['cpu'])}",
        f"cores = {m['cores']}",
        f"kernel = {json.dumps(m['kernel'])}",
        f"rustc = {json.dumps(m['rustc'])}",
        f"date = {json.dumps(m['date'])}",
        f"build = {json.dumps(m['build'])}",
        "",
        "[budget]",
        f"tolerance = {tolerance}",
    ]
    for key, (value, values) in figures.items():
        what, unit, _, _ = FIGURES[key]
        lines.append(f"# {what}, {unit} (median of {len(values)} runs)")
        lines.append(f"{key} = {value:.4g}")
    lines += [
        "",
        "[reference]",
        "# The machine's speed when the figures above were measured: gzip -1 over the first 32 MiB of",
        "# the large file, ms CPU per MB (median of the runs beside them). A check scales the budget by",
        "# its own calibration over this one, so a slower machine of the same kind is not a regression.",
        f"{REFERENCE[0]} = {ref[0]:.4g}",
    ]
    with open(a.budget, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"budget: wrote {a.budget}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--measure", required=True, choices=sorted({f[2] for f in FIGURES.values()}))
    m.add_argument("--bin", required=True)
    m.add_argument("--site", required=True)
    m.add_argument("--rows-per-file", type=int, required=True)
    m.add_argument("--timeout", type=float, default=600.0)
    # 5 ms: the harness shares the 2 cores with the daemon; its polling must not slow it much.
    m.add_argument("--poll-ms", type=float, default=5.0)
    m.add_argument("--quiet-ms", type=float, default=300.0)
    c = sub.add_parser("calibrate")
    c.add_argument("--file", required=True)
    for name in ("check", "write"):
        c = sub.add_parser(name)
        c.add_argument("--budget", required=True)
        c.add_argument("--results", required=True)
        c.add_argument("--machine", required=name == "write", help="JSON: cpu, cores, kernel, rustc, date, build")
        c.add_argument("--sites", default="bench-out/budget")
    a = ap.parse_args()
    {"measure": measure, "calibrate": calibrate, "check": check, "write": write}[a.cmd](a)


if __name__ == "__main__":
    main()
