#!/usr/bin/env bash
# Corrections benchmark (issue: corrections): a re-sent file replacing its earlier version, and
# upserts by key, into a large table, dropped one at a time into the running daemon.
# Not a test: the figures go to BENCHMARKS.md.
#
#   scripts/bench-corrections.sh [BASE_FILES] [ROWS_PER_FILE] [RUNS]   (defaults: 10000 1000 30)
#
# 1. base: BASE_FILES × ROWS_PER_FILE sales rows (10 million by default) loaded by `run --once` into
#    a feed with on_resend = "replace" and merge_key = ["sale_id"] (a data file per source file).
# 2. replace: RUNS base files re-sent under their own name with every total a cent higher
#    (ROWS_PER_FILE rows each): drop → committed version, p50/p90/max.
# 3. upsert: RUNS files of ROWS_PER_FILE rows, 10 % of them existing sale ids picked at random
#    across the whole table (the worst case for min/max skipping), the rest new: drop → committed.
# Prints one JSON object (also in bench-out/corrections.json), with the daemon's peak RSS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
base_files=${1:-10000} rows=${2:-1000} runs=${3:-30}
out="$repo/bench-out/corrections"
cd "$repo"
cargo build --release --quiet
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
bin="$(cargo_target_dir "$repo")/release/deltadrop"
cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}/bench-data/corrections-$base_files-$rows
if [[ ! -f "$cache/done" ]]; then
  rm -rf "$cache"; mkdir -p "$cache/base"
  echo "generating $base_files × $rows rows (cached in $cache)" >&2
  "$here/gen-sales.sh" -n "$base_files" -r "$rows" -s 7 -o "$cache/base" >&2
  touch "$cache/done"
fi

rm -rf "$out"; mkdir -p "$out/inbox" "$out/fix" "$out/upsert"
printf '[http]\nenabled = false\n[[feed]]\nname = "sales"\non_success = "delete"\nmaintenance_interval = "0s"\non_resend = "replace"\nmerge_key = ["sale_id"]\n' \
  > "$out/config.toml"
# Hard links: the daemon deletes the inbox's name, the cache keeps its own.
cp -l "$cache/base"/*.csv "$out/inbox/" 2>/dev/null || cp "$cache/base"/*.csv "$out/inbox/"
t0=$(date +%s.%N)
(cd "$out" && RUST_LOG=warn "$bin" run --once --config config.toml)
load_s=$(echo "$(date +%s.%N) - $t0" | bc)
echo "base: $base_files files loaded in ${load_s} s" >&2

python3 - "$cache/base" "$out/fix" "$out/upsert" "$base_files" "$rows" "$runs" <<'PY'
import os, random, sys
base, fix, upsert, n, rows, runs = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
rnd = random.Random(13)
names = sorted(os.listdir(base))
def lines(name):
    with open(os.path.join(base, name)) as f:
        return f.read().splitlines()
header = lines(names[0])[0]
# Corrections: the files in the middle of the table, one more for the untimed warm-up.
for name in names[n // 2 : n // 2 + runs + 1]:
    ls = lines(name)
    out = [header]
    for l in ls[1:]:
        c = l.split(",")
        c[6] = f"{float(c[6]) + 0.01:.2f}"
        out.append(",".join(c))
    open(os.path.join(fix, name), "w").write("\n".join(out) + "\n")
# Upserts: 10 % existing ids from random files and rows, 90 % new ones.
existing = rows // 10
for k in range(runs + 1):
    out = [header]
    for _ in range(existing):
        l = lines(names[rnd.randrange(n)])[1 + rnd.randrange(rows)].split(",")
        l[6] = f"{float(l[6]) * 2:.2f}"
        out.append(",".join(l))
    template = lines(names[k])[1].split(",")
    for i in range(rows - existing):
        template[0] = f"U{k}-{i}"
        out.append(",".join(template))
    open(os.path.join(upsert, f"upsert-{k:04d}.csv"), "w").write("\n".join(out) + "\n")
PY

(cd "$out" && RUST_LOG=info exec "$bin" run --config config.toml 2> daemon.log) &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do grep -q "file(s) known loaded" "$out/daemon.log" 2>/dev/null && break; sleep 0.1; done
grep -q "file(s) known loaded" "$out/daemon.log" || { echo "the daemon did not start" >&2; exit 1; }
sleep 1 # its first poll of the (empty) inbox
echo "replace: $runs × $rows rows" >&2
replace=$(python3 "$here/bench/drops.py" latency --staging "$out/fix" --inbox "$out/inbox" \
  --table "$out/lake/sales" --poll-ms 0.5 --gap-ms 50)
echo "upsert: $runs × $rows rows (10 % existing keys)" >&2
upsert=$(python3 "$here/bench/drops.py" latency --staging "$out/upsert" --inbox "$out/inbox" \
  --table "$out/lake/sales" --poll-ms 0.5 --gap-ms 50)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
trap - EXIT
python3 - "$replace" "$upsert" "$rss_kb" "$base_files" "$rows" "$load_s" "$out/daemon.log" <<'PY' | tee "$out/../corrections.json"
import json, re, sys
replace, upsert = (json.loads(x) for x in sys.argv[1:3])
rss_kb, files, rows = map(int, sys.argv[3:6])
log = open(sys.argv[7]).read()
rewritten = [int(m) for m in re.findall(r"(\d+) rewritten\)", log)]
for r in (replace, upsert):
    r.pop("ms", None)
print(json.dumps({
    "table_rows": files * rows, "table_files": files, "base_load_s": float(sys.argv[6]),
    "replace": replace, "upsert": upsert, "peak_rss_mib": round(rss_kb / 1024, 1),
    "files_rewritten_per_upsert_max": max(rewritten) if rewritten else 0,
}, indent=1))
PY
