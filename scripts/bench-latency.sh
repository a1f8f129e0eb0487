#!/usr/bin/env bash
# deltadrop's own latency and burst benchmark (not a test: results go to BENCHMARKS.md).
#
#   scripts/bench-latency.sh [LATENCY_FILES] [BURST_FILES] [LARGE_ROWS]
#                                          (defaults: 3000, 10000, 4000000; about 5 minutes)
#
# 1. latency: 1,000-row files renamed into the inbox one at a time, events on;
#    drop → committed Delta version, p50/p90/p99.
# 2. burst: BURST_FILES files × 100 rows renamed into the inbox at once; files/s to all committed.
# 3. large file: one LARGE_ROWS-row file with `run --once`: MB/s and peak RSS (streaming).
# Each run starts from an empty table in bench-out/ (release build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
lat_files=${1:-3000}
burst_files=${2:-10000}
large_rows=${3:-4000000}
out="$repo/bench-out"
cd "$repo"
cargo build --release --quiet
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
bin="$(cargo_target_dir "$repo")/release/deltadrop"

setup() { # fresh site in $1
  rm -rf "$1"; mkdir -p "$1"
  cat > "$1/config.toml" <<TOML
poll_interval = "5s"
events = true
[[feed]]
name = "sales"
TOML
  mkdir -p "$1/inbox" "$1/staging"
}

start() { # run the daemon in $1
  (cd "$1" && RUST_LOG=warn exec "$bin" run --config config.toml 2> daemon.log) &
  pid=$!
  for _ in $(seq 1 200); do [[ -d "$1/lake/sales/_delta_log" ]] && break; sleep 0.05; done
}

stop() { kill -TERM "$pid"; wait "$pid" || true; }

echo "latency: $lat_files × 1000 rows, one at a time" >&2
site="$out/latency"; setup "$site"
"$here/gen-sales.sh" -n "$lat_files" -r 1000 -s 7 -o "$site/staging" 2>/dev/null
start "$site"
lat=$(python3 "$here/bench/drops.py" latency --staging "$site/staging" --inbox "$site/inbox" \
  --table "$site/lake/sales" --poll-ms 0.2)
stop
echo "$lat" >&2

echo "burst: $burst_files × 100 rows at once" >&2
site="$out/burst"; setup "$site"
"$here/gen-sales.sh" -n "$burst_files" -r 100 -s 8 -o "$site/staging" 2>/dev/null
start "$site"
burst=$(python3 "$here/bench/drops.py" burst --staging "$site/staging" --inbox "$site/inbox" \
  --table "$site/lake/sales" --rows-per-file 100)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
stop
echo "$burst" >&2

echo "large file: $large_rows rows, run --once" >&2
site="$out/large"; setup "$site"
"$here/gen-sales.sh" -n 1 -r "$large_rows" -s 9 -o "$site/inbox" 2>/dev/null
large_bytes=$(stat -c %s "$site"/inbox/*.csv)
(cd "$site" && RUST_LOG=warn /usr/bin/time -f '%e %M' -o time.txt "$bin" run --once --config config.toml)
read -r large_secs large_rss_kb < "$site/time.txt"
rm -rf "$site/processed"
echo "large: $large_bytes bytes in $large_secs s, peak RSS $large_rss_kb KiB" >&2

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)
mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')
section=$(python3 - "$lat" "$burst" "$rss_kb" "$large_bytes" "$large_secs" "$large_rss_kb" "$large_rows" <<PY
import json, sys
lat, burst, rss = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3] or 0)
lbytes, lsecs, lrss, lrows = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
print(f"""## Latency and burst (scripts/bench-latency.sh)

Machine: ${cpu:-unknown CPU}, $(nproc) cores, ${mem}; $(uname -sr); $(rustc --version).
Date: $(date -u +%Y-%m-%dT%H:%MZ). Release build, local disk, events on, default config.

| measure | result | target |
|---|---|---|
| drop → committed, 1,000-row files one at a time ({lat['files']} files) | p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms | p50 ≤ 20 ms, p99 ≤ 100 ms |
| same run, p50 of the first vs the last {lat['window']} drops (table at version {lat['last_version']} at the end) | {lat['p50_first_ms']} ms vs {lat['p50_last_ms']} ms | flat with history |
| burst of {burst['files']:,} × 100-row files renamed in at once | {burst['files_per_s']:,} files/s ({burst['rows_per_s']:,.0f} rows/s), {burst['seconds']} s in {burst['commits']} commits | ≥ 1,000 files/s |
| daemon peak RSS during the burst | {rss // 1024} MiB | — |
| one {lbytes / 1e6:,.0f} MB file ({lrows:,} rows), \`run --once\`, process start to exit | {lsecs} s = {lbytes / 1e6 / lsecs:,.0f} MB/s, {lrows / lsecs:,.0f} rows/s; peak RSS {lrss // 1024} MiB | streamed: RSS independent of file size |
""")
PY
)
bench="$repo/BENCHMARKS.md"
[[ -f "$bench" ]] || printf '# Benchmarks\n\nFigures from the scripts in scripts/, newest run of each section.\n\n' > "$bench"
python3 - "$bench" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2].strip() + "\n"
text = open(path).read()
start = "<!-- bench-latency:start -->"
end = "<!-- bench-latency:end -->"
block = f"{start}\n{section}{end}\n"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end) + "\n?", lambda m: block, text, flags=re.S)
else:
    text = text.rstrip() + "\n\n" + block
open(path, "w").write(text)
PY
echo "wrote $bench" >&2
