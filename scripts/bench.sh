#!/usr/bin/env bash
# deltadrop against the tools users would pick instead: a Python script (pyarrow + deltalake, naive
# and batched) and Spark Structured Streaming, on identical generated sales data and the same table
# schema. Writes its section of BENCHMARKS.md (between <!-- bench.sh:begin --> and <!-- bench.sh:end -->).
#
#   scripts/bench.sh [--quick] [--repeats N] [--only FIGURES] [--contenders LIST] [--no-write]
#
#   --quick        small sizes, 1 repeat (a CI smoke run: a few minutes, mostly Spark start-ups)
#   --repeats N    repeats of every figure (default 3); cells show median (min–max)
#   --only         comma list of: latency,throughput,live,small,backlog,startup,growth (default:
#                  all; memory comes with throughput, live, small and backlog)
#   --contenders   comma list of: deltadrop,python,spark (default: all)
#   --no-write     print the section, leave BENCHMARKS.md alone
#
# Environment: DELTADROP_CACHE (default ~/.cache/deltadrop: the venv, generated data, the prebuilt
# growth tables), DELTADROP_BENCH_OUT (work folder, default bench-out/bench),
# DELTADROP_BENCH_SKIP_100K=1 (growth without the 100,000-file point),
# DELTADROP_BENCH_REBUILD=1 (rebuild the cached growth tables), DELTADROP_BENCH_BIN (measure this
# deltadrop binary instead of target/release/deltadrop: a before/after pair of builds).
# The full run takes 25–35 minutes on 2 cores, the first time ~10 more (data, growth tables, Spark
# jars); --quick about 4.
# Uses the release binary as it is (built only if missing; CARGO_TARGET_DIR is honoured): rebuild
# it first to measure new code.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
quick=0 repeats= only=latency,throughput,live,small,backlog,startup,growth contenders=deltadrop,python,spark write=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --repeats) repeats=${2:?--repeats needs a number}; shift 2 ;;
    --only) only=${2:?--only needs a list}; shift 2 ;;
    --contenders) contenders=${2:?--contenders needs a list}; shift 2 ;;
    --no-write) write=0; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
runs() { [[ ",$contenders," == *",$1,"* ]]; }

if [[ $quick -eq 1 ]]; then
  repeats=${repeats:-1}
  lat_files=40 lat_spark=5          # 1,000-row files dropped one at a time
  small_files=1000 small_naive=300 small_spark=100
  big_rows=700000                   # ≈ 50 MB
  version_points=(0 100 500)        # commit time at these table versions
  file_points=(300 1000 3000)       # per-file cost after this many files
  growth_burst=300 growth_probe=20
  backlog_files=3000
else
  repeats=${repeats:-3}
  lat_files=500 lat_spark=30
  # Python naive pays one Delta commit per file, Spark seconds per micro-batch: fewer files for them
  # (the table says so), so a run ends in minutes.
  small_files=10000 small_naive=1000 small_spark=1000
  big_rows=13900000                 # ≈ 1 GB of sales CSV (≈ 72 bytes a row)
  version_points=(0 1000 10000)
  file_points=(1000 10000 100000)
  [[ -n "${DELTADROP_BENCH_SKIP_100K:-}" ]] && file_points=(1000 10000)
  # 3,000 files: a burst of 1,000 lasts ~0.2 s, too short to tell 20% from noise.
  growth_burst=3000 growth_probe=50
  backlog_files=100000
fi

cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
out=${DELTADROP_BENCH_OUT:-$repo/bench-out/bench}
results="$out/results.jsonl"
mkdir -p "$cache" "$out"
rm -rf "$out/run" "$out/logs"
mkdir -p "$out/run" "$out/logs"
: > "$results"

# Background contenders (proc.py wrappers) and their process groups, for the trap.
bg_pids=()
cleanup() {
  local p f
  for p in "${bg_pids[@]+"${bg_pids[@]}"}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  # proc.py forwards TERM to its command's process group and waits for it.
  wait 2>/dev/null || true
  # A group whose proc.py is gone without stopping it (stop() removes the file of a clean stop).
  for f in "$out"/run/*/pgid; do
    [[ -f "$f" ]] && { kill -KILL -- "-$(cat "$f")" 2>/dev/null || true; }
  done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# ---- environment --------------------------------------------------------------------------------

# The venv shared with scripts/interop-python.sh; spark-env.sh adds pyspark + delta-spark to it.
venv="$cache/venv"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check deltalake==1.6.6 pyarrow==26.0.1 polars==2.1.0
PY="$venv/bin/python"
if runs spark; then
  # shellcheck source=lib/spark-env.sh
  source "$here/lib/spark-env.sh" || { log "Spark environment failed (scripts/lib/spark-env.sh)"; exit 1; }
  PY=$DELTADROP_PY
fi
export PYTHONPATH="$here/bench${PYTHONPATH:+:$PYTHONPATH}"

# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
release_bin=${DELTADROP_BENCH_BIN:-"$(cargo_target_dir "$repo")/release/deltadrop"}
if [[ -z "${DELTADROP_BENCH_BIN:-}" && ! -x "$release_bin" ]]; then
  # Minutes; cargo waits by itself if another build holds the lock.
  log "building the release binary"
  (cd "$repo" && cargo build --release --quiet)
fi
# A private copy: a rebuild during the run must not change what is measured halfway.
bin="$out/deltadrop"
cp "$release_bin" "$bin"
# What was measured, for the report (read now: the code may change during the run).
bin_time=$(date -u -r "$release_bin" +%Y-%m-%dT%H:%MZ)
# The newest commit older than the binary: what it was most likely built from (HEAD may be newer).
commit=$(cd "$repo" && git log -1 --format=%h --before="$(date -u -r "$release_bin" +%s)" 2>/dev/null || true)

# rustc or cargo running beside the benchmark (the other engineer's builds) makes numbers noisy:
# record the most seen at any step.
busy_max=0
note_busy() {
  local n
  n=$(pgrep -c -x 'rustc|cargo' 2>/dev/null || true) # pgrep exits 1 when it finds none
  ((n > busy_max)) && busy_max=$n
  return 0
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- data (generated once, cached) ----------------------------------------------------------------

# shellcheck source=lib/bench-data.sh
source "$here/lib/bench-data.sh"
bench_data_init "$cache" "$out"

# ---- sites and contenders ---------------------------------------------------------------------

# contender_cmd WHO SITE: the command that watches SITE's inbox (sets the array `cmd`).
contender_cmd() {
  case "$1" in
    deltadrop) cmd=("$bin" run --config "$2/config.toml") ;;
    python-naive|python-batched)
      cmd=("$PY" "$here/bench/baseline.py" --mode "${1#python-}" --inbox "$2/inbox"
           --table "$2/lake/sales" --processed "$2/processed") ;;
    spark)
      cmd=("$PY" "$here/bench/spark_stream.py" stream --inbox "$2/inbox" --table "$2/lake/sales"
           --checkpoint "$2/spark-checkpoint") ;;
    *) log "unknown contender $1"; exit 2 ;;
  esac
}

# start WHO SITE: runs the contender under proc.py (memory sampling) and returns once it is ready.
start() {
  local who=$1 site=$2
  warm "$site"
  contender_cmd "$who" "$site"
  rm -f "$site/ready" "$site/proc.json"
  "$PY" "$here/bench/proc.py" --ready watching --ready-file "$site/ready" --log "$site/$who.log" \
    --pid-file "$site/pgid" --out "$site/proc.json" -- "${cmd[@]}" &
  cpid=$!
  bg_pids+=("$cpid")
  while [[ ! -f "$site/ready" ]]; do
    if ! kill -0 "$cpid" 2>/dev/null; then
      log "$who did not start; its log ($site/$who.log):"
      tail -n 30 "$site/$who.log" >&2 || true
      exit 1
    fi
    sleep 0.02
  done
}

# stop SITE: stops the running contender (SIGTERM through proc.py) and keeps its log.
stop() {
  kill -TERM "$cpid"
  if ! wait "$cpid"; then
    log "contender failed; log in $out/logs"
    keep_logs "$1"
    exit 1
  fi
  local p keep=()
  for p in "${bg_pids[@]}"; do [[ $p == "$cpid" ]] || keep+=("$p"); done
  bg_pids=("${keep[@]+"${keep[@]}"}")
  rm -f "$1/pgid"
  keep_logs "$1"
}

# keep_logs SITE: the contender's log, named after the run (sites are deleted after each run).
keep_logs() {
  local f
  for f in "$1"/*.log; do
    [[ -f "$f" ]] && cp "$f" "$out/logs/$(basename "$1")-$(basename "$f")"
  done
  return 0
}

# check SITE ROWS: the table has deltadrop's schema and every row (a fair, complete run).
check() {
  "$PY" "$here/bench/sales_schema.py" check "$1/lake/sales" "$ref/lake/sales" --rows "$2" \
    || { log "table check failed in $1"; exit 1; }
}

record() { "$PY" "$here/bench/report.py" add "$results" "$@"; }

peers=()
runs deltadrop && peers+=(deltadrop)
runs python && peers+=(python-naive python-batched)
runs spark && peers+=(spark)

# The reference schema: a table deltadrop wrote (also a smoke test of the binary).
ref="$out/run/reference"
new_site "$ref"
"$here/gen-sales.sh" -n 1 -r 10 -s 1 -o "$ref/inbox" 2>/dev/null
RUST_LOG=warn "$bin" run --once --config "$ref/config.toml"

# ---- figures ----------------------------------------------------------------------------------

fig_latency() { # WHO REP
  local who=$1 rep=$2 n=$lat_files site="$out/run/latency-$1-$2"
  [[ $who == spark ]] && n=$lat_spark
  new_site "$site"
  stage "$(data lat 600 1000 21)" "$site/staging" $((n + 1)) # + the warm-up file (drops.py)
  start "$who" "$site"
  "$PY" "$here/bench/drops.py" latency --staging "$site/staging" --inbox "$site/inbox" \
    --table "$site/lake/sales" > "$site/drops.json"
  stop "$site"
  check "$site" $(((n + 1) * 1000))
  # The disk's own fsync tail in the same run, on the same filesystem (the p99 target is relative).
  "$PY" "$here/bench/fsync_probe.py" --dir "$site" > "$site/disk.json"
  record fig=latency who="$who" rep="$rep" --json drops="$site/drops.json" --json proc="$site/proc.json" \
    --json disk="$site/disk.json"
  log "latency $who: $(cut -c1-120 "$site/drops.json")"
  rm -rf "$site"
}

fig_throughput() { # WHO REP
  local who=$1 rep=$2 site="$out/run/throughput-$1-$2" big bytes secs
  [[ $who == python-naive ]] && return 0 # on one file it is the batched run: not repeated
  big="$(data big 1 "$big_rows" 31)/sales-31-00001.csv"
  bytes=$(stat -c %s "$big")
  new_site "$site"
  ln "$big" "$site/inbox/" 2>/dev/null || cp "$big" "$site/inbox/"
  warm "$site"
  case "$who" in
    deltadrop)
      "$PY" "$here/bench/proc.py" --log "$site/deltadrop.log" --out "$site/proc.json" -- \
        "$bin" run --once --config "$site/config.toml"
      secs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_s"])' "$site/proc.json") ;;
    python-batched)
      "$PY" "$here/bench/proc.py" --log "$site/python.log" --out "$site/proc.json" -- \
        "$PY" "$here/bench/baseline.py" --mode batched --once --inbox "$site/inbox" \
        --table "$site/lake/sales" --processed "$site/processed"
      secs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_s"])' "$site/proc.json") ;;
    spark)
      "$PY" "$here/bench/proc.py" --log "$site/spark.log" --stdout "$site/job.json" --out "$site/proc.json" -- \
        "$PY" "$here/bench/spark_stream.py" batch --csv "$site/inbox/$(basename "$big")" --table "$site/lake/sales"
      secs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$site/job.json") ;;
    *) return 0 ;;
  esac
  keep_logs "$site"
  check "$site" "$big_rows"
  record fig=throughput who="$who" rep="$rep" bytes="$bytes" rows="$big_rows" seconds="$secs" \
    --json proc="$site/proc.json"
  log "throughput $who: $bytes bytes in $secs s ($(cut -c1-100 "$site/proc.json"))"
  rm -rf "$site"
}

# The large file renamed into a running daemon (deltadrop only; what a user does, where the
# throughput figure above starts a `run --once` process): drop → every row committed, and the
# daemon's peak RSS over its whole run.
fig_live() { # REP
  local rep=$1 site="$out/run/live-$1" big bytes
  big="$(data big 1 "$big_rows" 31)/sales-31-00001.csv"
  bytes=$(stat -c %s "$big")
  new_site "$site"
  stage "$(data lat 600 1000 21)" "$site/staging" 1
  ln "$big" "$site/staging/zz-$(basename "$big")" 2>/dev/null || cp "$big" "$site/staging/zz-$(basename "$big")"
  start deltadrop "$site"
  "$PY" "$here/bench/drops.py" burst --staging "$site/staging" --inbox "$site/inbox" \
    --table "$site/lake/sales" --rows-per-file "$big_rows" > "$site/drops.json"
  stop "$site"
  check "$site" $((big_rows + 1000))
  record fig=live who=deltadrop rep="$rep" bytes="$bytes" --json drops="$site/drops.json" \
    --json proc="$site/proc.json"
  log "live large file: $(cat "$site/drops.json") ($(cut -c1-100 "$site/proc.json"))"
  rm -rf "$site"
}

# A backlog waiting at start (deltadrop only): backlog_files × 10-row files in the inbox, then
# `run --once` → process start to exit.
fig_backlog() { # REP
  local rep=$1 site="$out/run/backlog-$1" secs
  new_site "$site"
  stage "$(data prefill "$backlog_files" 10 24)" "$site/inbox" "$backlog_files"
  warm "$site"
  "$PY" "$here/bench/proc.py" --log "$site/deltadrop.log" --out "$site/proc.json" -- \
    "$bin" run --once --config "$site/config.toml"
  secs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["wall_s"])' "$site/proc.json")
  keep_logs "$site"
  check "$site" $((backlog_files * 10))
  record fig=backlog who=deltadrop rep="$rep" files="$backlog_files" seconds="$secs" \
    --json proc="$site/proc.json"
  log "backlog: $backlog_files files in $secs s"
  rm -rf "$site"
}

fig_small() { # WHO REP
  local who=$1 rep=$2 n=$small_files site="$out/run/small-$1-$2"
  [[ $who == spark ]] && n=$small_spark
  [[ $who == python-naive ]] && n=$small_naive
  new_site "$site"
  stage "$(data small $((small_files + 1)) 100 22)" "$site/staging" $((n + 1))
  start "$who" "$site"
  "$PY" "$here/bench/drops.py" burst --staging "$site/staging" --inbox "$site/inbox" \
    --table "$site/lake/sales" --rows-per-file 100 > "$site/drops.json"
  stop "$site"
  check "$site" $(((n + 1) * 100))
  record fig=small who="$who" rep="$rep" --json drops="$site/drops.json" --json proc="$site/proc.json"
  log "small $who: $(cat "$site/drops.json")"
  rm -rf "$site"
}

# Growth tables, built by deltadrop itself and cached: keyed by the binary's version, rebuilt when
# asked or when a point is missing. Each is a whole site (table, state folder, config) to copy.
sites_root="$cache/bench-sites/$("$bin" --version | tr -c 'A-Za-z0-9.\n' '_')"
[[ -n "${DELTADROP_BENCH_REBUILD:-}" ]] && rm -rf "$sites_root"

# snapshot SITE NAME: keeps SITE (stopped) as a cached starting point, without the archived CSVs.
snapshot() {
  rm -rf "$1/processed" "$1/staging" "$1"/*.log "$1/ready" "$1/proc.json" "$1/drops.json"
  mkdir -p "$1/processed" "$1/staging" "$sites_root"
  rm -rf "$sites_root/$2.tmp"
  cp -a "$1" "$sites_root/$2.tmp"
  mv "$sites_root/$2.tmp" "$sites_root/$2"
}

# One commit per file up to each version point (tiny 10-row files dropped one at a time, no pause).
build_versions() {
  local last=${version_points[-1]} site="$out/run/build-versions" prev=0 v
  [[ -d "$sites_root/versions-$last" ]] && return 0
  log "building tables at versions ${version_points[*]:1} (one commit per file; cached in $sites_root)"
  local tiny
  tiny=$(data tiny "$last" 10 23)
  new_site "$site"
  for v in "${version_points[@]:1}"; do
    stage "$tiny" "$site/staging" $((v - prev)) "$prev"
    start deltadrop "$site"
    "$PY" "$here/bench/drops.py" latency --gap-ms 0 --staging "$site/staging" --inbox "$site/inbox" \
      --table "$site/lake/sales" > "$out/logs/build-versions-$v.json"
    stop "$site"
    snapshot "$site" "versions-$v"
    prev=$v
  done
  rm -rf "$site"
}

# Files loaded in bursts (many files per commit) up to each file-count point.
build_files() {
  local last=${file_points[-1]} site="$out/run/build-files" prev=0 n tiny
  [[ -d "$sites_root/files-$last" ]] && return 0
  log "building tables holding ${file_points[*]} files (bursts; cached in $sites_root)"
  tiny=$(data prefill "$last" 10 24)
  new_site "$site"
  for n in "${file_points[@]}"; do
    stage "$tiny" "$site/staging" $((n - prev)) "$prev"
    start deltadrop "$site"
    "$PY" "$here/bench/drops.py" burst --rows-per-file 10 --staging "$site/staging" --inbox "$site/inbox" \
      --table "$site/lake/sales" > "$out/logs/build-files-$n.json"
    stop "$site"
    snapshot "$site" "files-$n"
    prev=$n
  done
  rm -rf "$site"
}

# from_snapshot NAME DIR: a fresh copy of a cached site.
from_snapshot() {
  rm -rf "$2"
  cp -a "$sites_root/$1" "$2"
}

fig_startup() { # WHO REP
  local who=$1 rep=$2 kind site
  for kind in empty versions; do
    site="$out/run/startup-$who-$kind-$rep"
    if [[ $kind == empty ]]; then new_site "$site"; else from_snapshot "versions-${version_points[-1]}" "$site"; fi
    warm "$site"
    contender_cmd "$who" "$site"
    "$PY" "$here/bench/proc.py" --ready watching --stop-after-ready --log "$site/$who.log" \
      --out "$site/proc.json" -- "${cmd[@]}"
    record fig=startup who="$who" rep="$rep" table="$kind" --json proc="$site/proc.json"
    log "startup $who $kind: $(cat "$site/proc.json")"
    rm -rf "$site"
  done
}

fig_growth() { # REP (deltadrop only)
  local rep=$1 v n site
  for v in "${version_points[@]}"; do
    site="$out/run/growth-commit-$v-$rep"
    if [[ $v -eq 0 ]]; then new_site "$site"; else from_snapshot "versions-$v" "$site"; fi
    stage "$(data lat 600 1000 21)" "$site/staging" $((growth_probe + 1))
    start deltadrop "$site"
    "$PY" "$here/bench/drops.py" latency --staging "$site/staging" --inbox "$site/inbox" \
      --table "$site/lake/sales" > "$site/drops.json"
    stop "$site"
    record fig=growth kind=commit point="$v" rep="$rep" --json drops="$site/drops.json" \
      --deltadrop-log "$site/deltadrop.log"
    log "growth commit at version $v: $(cut -c1-100 "$site/drops.json")"
    rm -rf "$site"
  done
  for n in "${file_points[@]}"; do
    site="$out/run/growth-files-$n-$rep"
    from_snapshot "files-$n" "$site"
    stage "$(data burst 3001 100 25)" "$site/staging" $((growth_burst + 1))
    start deltadrop "$site"
    "$PY" "$here/bench/drops.py" burst --rows-per-file 100 --staging "$site/staging" --inbox "$site/inbox" \
      --table "$site/lake/sales" > "$site/drops.json"
    stop "$site"
    record fig=growth kind=perfile point="$n" rep="$rep" --json drops="$site/drops.json" \
      --deltadrop-log "$site/deltadrop.log"
    log "growth per-file after $n files: $(cat "$site/drops.json")"
    rm -rf "$site"
  done
}

# Data and cached tables first, so repeats measure only the contenders.
want latency && data lat 600 1000 21 >/dev/null
want throughput && data big 1 "$big_rows" 31 >/dev/null
want small && data small $((small_files + 1)) 100 22 >/dev/null
want live && { data big 1 "$big_rows" 31 >/dev/null; data lat 600 1000 21 >/dev/null; }
want backlog && data prefill "$backlog_files" 10 24 >/dev/null
if want growth || { want startup; }; then build_versions; fi
want growth && { build_files; data burst 3001 100 25 >/dev/null; data lat 600 1000 21 >/dev/null; }

# ---- report -----------------------------------------------------------------------------------

# write_report DONE: renders what has been measured so far (after every repeat, so a run cut short
# still leaves its figures) into BENCHMARKS.md, or only $out/section.md with --no-write.
write_report() {
  versions=$("$PY" - "$bin" <<'PY'
import importlib.metadata as md, platform, subprocess, sys
def v(p):
    try:
        return md.version(p)
    except md.PackageNotFoundError:
        return None
dd = subprocess.run([sys.argv[1], "--version"], capture_output=True, text=True).stdout.strip()
parts = [f"{dd} (release build)", f"Python {platform.python_version()} with pyarrow {v('pyarrow')} and deltalake {v('deltalake')}"]
if v("pyspark"):
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except Exception:
        java = "java ?"
    parts.append(f"Spark {v('pyspark')} (pyspark) with delta-spark {v('delta-spark')}, {java}")
print("; ".join(parts))
PY
  )
  noise="load average ${load_start} at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end;"
  noise+=" at most ${busy_max} rustc/cargo process(es) running beside it at a step start"
  noise+=" (another engineer's builds share the 2 cores: figures are noisier than on an idle machine)."
  noise+=" Binary: ${DELTADROP_BENCH_BIN:-target/release/deltadrop} as built at ${bin_time} (newest commit before it: ${commit:-unknown})."
  growth_note=""
  [[ $quick -eq 0 && ${#file_points[@]} -lt 3 ]] && growth_note="The 100,000-file point was skipped (DELTADROP_BENCH_SKIP_100K)."
  big_bytes=$(stat -c %s "$data_root/big-1x${big_rows}-s31/sales-31-00001.csv" 2>/dev/null || echo 0)

  # Through the environment, not pasted into Python source: the version strings hold quotes.
  M_CPU=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n1) \
  M_NPROC=$(nproc) \
  M_MEM=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) \
  M_KERNEL=$(uname -sr) \
  M_DATE=$(date -u +%Y-%m-%dT%H:%MZ) \
  M_MODE=$([[ $quick -eq 1 ]] && echo 'quick (small sizes)' || echo full) \
  M_REPEATS=$repeats M_DONE=$1 M_VERSIONS=$versions M_NOISE=$noise M_VPOINT=${version_points[-1]} \
  M_BIG_BYTES=$big_bytes M_BIG_ROWS=$big_rows M_GBURST=$growth_burst M_GPROBE=$growth_probe M_BACKLOG=$backlog_files \
  M_GNOTE=$growth_note M_VPOINTS="${version_points[*]}" M_FPOINTS="${file_points[*]}" \
  "$PY" - "$out/meta.json" <<'PY'
import json, os, sys
e = os.environ
json.dump({
    "cpu": e["M_CPU"], "nproc": int(e["M_NPROC"]), "mem": e["M_MEM"], "kernel": e["M_KERNEL"],
    "date": e["M_DATE"], "mode": e["M_MODE"], "repeats": int(e["M_REPEATS"]), "done": int(e["M_DONE"]),
    "versions": e["M_VERSIONS"], "noise": e["M_NOISE"],
    "versions_label": f"{int(e['M_VPOINT']):,}",
    "big_mb": int(e["M_BIG_BYTES"]) / 1e6, "big_rows": int(e["M_BIG_ROWS"]),
    "growth_burst": int(e["M_GBURST"]), "growth_probe": int(e["M_GPROBE"]),
    "backlog_files": int(e["M_BACKLOG"]),
    "growth_note": e["M_GNOTE"],
    "version_points": [int(x) for x in e["M_VPOINTS"].split()],
    "file_points": [int(x) for x in e["M_FPOINTS"].split()],
}, open(sys.argv[1], "w"), indent=1)
PY

  if [[ $write -eq 1 ]]; then
    "$PY" "$here/bench/report.py" render "$results" "$out/meta.json" --write "$repo/BENCHMARKS.md" > "$out/section.md"
  else
    "$PY" "$here/bench/report.py" render "$results" "$out/meta.json" > "$out/section.md"
  fi
}

# Repeats outermost: a burst of noise (a compile next door) then hits one repeat of every contender,
# not every repeat of one.
for rep in $(seq 1 "$repeats"); do
  log "repeat $rep of $repeats"
  for who in "${peers[@]}"; do
    note_busy
    want latency && fig_latency "$who" "$rep"
    note_busy
    want throughput && fig_throughput "$who" "$rep"
    note_busy
    want small && fig_small "$who" "$rep"
    note_busy
    [[ $who == python-batched ]] && continue # starts exactly as python-naive does
    want startup && fig_startup "$who" "$rep"
  done
  note_busy
  if want live && runs deltadrop; then fig_live "$rep"; fi
  note_busy
  if want backlog && runs deltadrop; then fig_backlog "$rep"; fi
  note_busy
  if want growth && runs deltadrop; then fig_growth "$rep"; fi
  write_report "$rep"
done
cat "$out/section.md"

