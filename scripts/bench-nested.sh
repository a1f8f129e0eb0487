#!/usr/bin/env bash
# JSON lines with nested objects and arrays (an order: a customer object, an array of item objects,
# an array of tags): what structs cost against keeping the same values as JSON text, and against
# the best Python route (pyarrow.json infers structs and lists itself, + deltalake).
# Prints a Markdown table (median and range of --runs) for BENCHMARKS.md.
#
#   scripts/bench-nested.sh [--runs N] [--bin PATH] [--mb SIZE]
#
# deltadrop: `run --once`, process start → exit (/usr/bin/time: wall, CPU, peak RSS): with
# schema = "infer" (a first file: its first 64 MiB are read for the types before it is loaded),
# nested = "struct" and "json"; and with the columns given (`sniff` of the file's head, as a
# table that exists already), structs and arrays or the same columns as strings. Python: reading the file to the commit,
# interpreter start-up and imports excluded. Data (--mb, default 200) generated once into
# ${DELTADROP_CACHE:-~/.cache/deltadrop}/bench-data.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
runs=3 bin= mb=200
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=${2:?}; shift 2 ;;
    --bin) bin=${2:?}; shift 2 ;;
    --mb) mb=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-nested: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "bench-nested: $*" >&2; }
cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
venv="$cache/venv"
out="$repo/bench-out/nested"
rm -rf "$out"; mkdir -p "$out" "$cache/bench-data"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check deltalake==1.6.6 pyarrow==26.0.1
PY="$venv/bin/python"
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
if [[ -z "$bin" ]]; then
  log "building deltadrop (profile budget: release code generation, --no-default-features)"
  (cd "$repo" && cargo build --quiet --profile budget --no-default-features --bin deltadrop)
  bin="$(cargo_target_dir "$repo")/budget/deltadrop"
fi
cp "$bin" "$out/deltadrop"; bin="$out/deltadrop"

data="$cache/bench-data/orders-nested-${mb}MB.ndjson"
if [[ ! -f "$data" ]]; then
  log "writing ~$mb MB of nested JSON lines"
  "$PY" - "$data.tmp" "$((mb * 1000000))" <<'PY'
import json, random, sys
r = random.Random(7)
cities = ["Recife", "São Paulo", "Rio de Janeiro", "Natal", "Belo Horizonte", "Curitiba"]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    n, size = 0, 0
    while size < int(sys.argv[2]):
        n += 1
        items = [{"sku": f"SKU-{r.randrange(100000):05d}", "qty": r.randrange(1, 20),
                  "price": round(r.uniform(0.5, 999), 2)} for _ in range(r.randrange(1, 6))]
        line = json.dumps({
            "order_id": n,
            "placed_at": f"2026-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}T{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}Z",
            "customer": {"id": f"C{r.randrange(10**6):06d}", "city": r.choice(cities),
                         "since": f"20{r.randrange(10, 27)}-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}",
                         "vip": r.random() < 0.1},
            "items": items,
            "tags": r.sample(["web", "app", "promo", "gift", "b2b"], r.randrange(0, 3)),
        }, ensure_ascii=False)
        f.write(line + "\n")
        size += len(line.encode()) + 1
PY
  mv "$data.tmp" "$data"
fi
bytes=$(stat -c %s "$data")
results="$out/results.jsonl"
: > "$results"

head -n 2000 "$data" > "$out/head.ndjson"
"$bin" sniff "$out/head.ndjson" 2>/dev/null | sed -n '/^columns/,/^]/p' > "$out/columns.toml"
grep -q 'struct<' "$out/columns.toml" || { log "sniff gave no struct column:"; cat "$out/columns.toml" >&2; exit 1; }
sed 's/type = "\(struct\|array\)<.*>"/type = "string"/' "$out/columns.toml" > "$out/strings.toml"

deltadrop_run() { # LABEL FEED_LINES
  local site="$out/site" wall user sys rss rows
  rm -rf "$site"; mkdir -p "$site/inbox"
  printf '[http]\nenabled = false\n[[feed]]\nname = "orders"\ntable = "lake/orders"\nformat = "ndjson"\n%s\n' \
    "$2" > "$site/config.toml"
  cp "$data" "$site/inbox/"
  cat "$site/inbox/"* > /dev/null
  /usr/bin/time -o "$site/time" -f '%e %U %S %M' "$bin" run --once --config "$site/config.toml" \
    >/dev/null 2>"$site/log"
  read -r wall user sys rss < "$site/time"
  rows=$("$PY" -c 'import sys; from deltalake import DeltaTable; print(DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows); import os; os._exit(0)' "$site/lake/orders")
  echo "{\"who\": \"deltadrop $1\", \"seconds\": $wall, \"cpu\": $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}'), \"rss_kib\": $rss, \"rows\": $rows}" >> "$results"
  log "$(tail -n 1 "$results")"
}
python_run() {
  local tbl="$out/py-table"
  rm -rf "$tbl"
  cat "$data" > /dev/null
  "$PY" - "$data" "$tbl" >> "$results" <<'PY'
import json, os, sys, time
import pyarrow.json as pj
from deltalake import write_deltalake
t0 = time.perf_counter()
t = pj.read_json(sys.argv[1])
write_deltalake(sys.argv[2], t)
print(json.dumps({"who": "pyarrow.json + deltalake", "seconds": round(time.perf_counter() - t0, 3),
                  "rows": t.num_rows}), flush=True)
os._exit(0)
PY
  log "$(tail -n 1 "$results")"
}
for rep in $(seq 1 "$runs"); do
  log "run $rep of $runs"
  deltadrop_run 'infer, nested=struct' 'schema = "infer"'
  deltadrop_run 'infer, nested=json' $'schema = "infer"\nnested = "json"'
  deltadrop_run 'columns given: structs and arrays' "$(cat "$out/columns.toml")"
  deltadrop_run 'columns given: the same as strings (JSON text)' "$(cat "$out/strings.toml")"
  python_run
done

M_CPU=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n1) M_DATE=$(date -u +%Y-%m-%dT%H:%MZ) \
  M_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)" python3 - "$results" "$bytes" <<'PY'
import json, os, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
size = int(sys.argv[2])
e = os.environ
print(f"Machine: {e['M_CPU']}, {os.cpu_count()} cores. Date: {e['M_DATE']} (load average at the end "
      f"{e['M_LOAD']}). {size / 1e6:.0f} MB of nested JSON lines; median (min–max) of the runs.\n")
print("| route | seconds | CPU s | MB/s | peak RSS | rows |")
print("|---|---:|---:|---:|---:|---:|")
for who in dict.fromkeys(r["who"] for r in rs):
    g = [r for r in rs if r["who"] == who]
    s = sorted(r["seconds"] for r in g)
    rows = {r["rows"] for r in g}
    assert len(rows) == 1, (who, rows)
    cpu = f"{statistics.median(r['cpu'] for r in g):.2f}" if "cpu" in g[0] else ""
    rss = f"{statistics.median(r['rss_kib'] for r in g) / 1024:.0f} MiB" if "rss_kib" in g[0] else ""
    print(f"| {who} | {statistics.median(s):.2f} ({s[0]:.2f}–{s[-1]:.2f}) | {cpu} | "
          f"{size / 1e6 / statistics.median(s):.1f} | {rss} | {rows.pop():,} |")
PY
