#!/usr/bin/env bash
# deltadrop against the best Python routes on the inputs of issue 26: a 100,000-row workbook
# (python-calamine, and pandas + openpyxl, each + deltalake) and a ~500 MB JSON lines file
# (pyarrow.json + deltalake). Same sales rows, same typed table (decimals, UTC timestamps).
# Prints a Markdown section (median and range of --runs) for BENCHMARKS.md.
#
#   scripts/bench-formats.sh [--runs N] [--bin PATH]
#
# deltadrop: `run --once` on a fresh site, process start → exit (/usr/bin/time: wall, CPU, peak
# RSS). Python: from reading the file to the commit, interpreter start-up and imports excluded.
# Data: generated once into ${DELTADROP_CACHE:-~/.cache/deltadrop}/bench-data (a few minutes).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
runs=3 bin=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=${2:?}; shift 2 ;;
    --bin) bin=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-formats: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "bench-formats: $*" >&2; }
cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
venv="$cache/venv"
out="$repo/bench-out/formats"
rm -rf "$out"; mkdir -p "$out"
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
# shellcheck source=lib/bench-data.sh
source "$here/lib/bench-data.sh"
bench_data_init "$cache" "$out"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check deltalake==1.6.6 pyarrow==26.0.1 \
  python-calamine==0.9.1 pandas==3.1.1 openpyxl==3.1.5
if [[ -z "$bin" ]]; then
  log "building deltadrop (profile budget: release code generation, --no-default-features)"
  (cd "$repo" && cargo build --quiet --profile budget --no-default-features --bin deltadrop)
  bin="$(cargo_target_dir "$repo")/budget/deltadrop"
fi
cp "$bin" "$out/deltadrop"; bin="$out/deltadrop"
PY="$venv/bin/python"
F="$here/bench/formats.py"

xlsx="$data_root/formats-100000.xlsx"
if [[ ! -f "$xlsx" ]]; then
  log "writing a 100,000-row workbook"
  "$PY" "$F" make-xlsx "$(data formats-src 1 100000 51)/sales-51-00001.csv" "$xlsx.tmp" 100000
  mv "$xlsx.tmp" "$xlsx"
fi
ndjson="$data_root/formats-500MB.ndjson"
if [[ ! -f "$ndjson" ]]; then
  log "writing ~500 MB of JSON lines"
  "$PY" "$F" make-ndjson "$(data formats-big 1 2700000 52)" "$ndjson.tmp" 500000000
  mv "$ndjson.tmp" "$ndjson"
fi

results="$out/results.jsonl"
: > "$results"
deltadrop_run() { # KIND FILE
  local site="$out/site" wall user sys rss rows
  rm -rf "$site"; mkdir -p "$site/inbox"
  printf '[http]\nenabled = false\n[[feed]]\nname = "sales"\nformat = "auto"\n' > "$site/config.toml"
  cp "$2" "$site/inbox/"
  warm "$site"
  /usr/bin/time -o "$site/time" -f '%e %U %S %M' "$bin" run --once --config "$site/config.toml" \
    >/dev/null 2>"$site/log"
  read -r wall user sys rss < "$site/time"
  rows=$("$PY" -c 'import sys; from deltalake import DeltaTable; print(DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows); import os; os._exit(0)' "$site/lake/sales")
  echo "{\"kind\": \"$1\", \"who\": \"deltadrop\", \"seconds\": $wall, \"cpu\": $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}'), \"rss_kib\": $rss, \"rows\": $rows, \"bytes\": $(stat -c %s "$2")}" >> "$results"
  log "$1 deltadrop: $(tail -n 1 "$results")"
}
python_run() { # KIND ROUTE FILE
  local tbl="$out/py-table" r
  rm -rf "$tbl"
  cat "$3" > /dev/null
  r=$("$PY" "$F" "$2" "$3" "$tbl")
  echo "{\"kind\": \"$1\", \"who\": \"$2\", \"bytes\": $(stat -c %s "$3"), ${r#\{}" >> "$results"
  log "$1 $2: $(tail -n 1 "$results")"
}
for rep in $(seq 1 "$runs"); do
  log "run $rep of $runs"
  deltadrop_run xlsx "$xlsx"
  python_run xlsx load-xlsx-calamine "$xlsx"
  python_run xlsx load-xlsx-pandas "$xlsx"
  deltadrop_run ndjson "$ndjson"
  python_run ndjson load-ndjson "$ndjson"
done

M_CPU=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n1) M_DATE=$(date -u +%Y-%m-%dT%H:%MZ) \
  M_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)" python3 - "$results" <<'PY'
import json, os, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
e = os.environ
print("## Workbooks and JSON lines (scripts/bench-formats.sh)\n")
print(f"Machine: {e['M_CPU']}, {os.cpu_count()} cores. Date: {e['M_DATE']} (load average at the end "
      f"{e['M_LOAD']}). Median (min–max) of the runs; rows checked in every table.\n")
print("| input | route | seconds | rows/s | MB/s | deltadrop's advantage |")
print("|---|---|---|---|---|---|")
names = {"deltadrop": "deltadrop `run --once`", "load-xlsx-calamine": "python-calamine + deltalake",
         "load-xlsx-pandas": "pandas (openpyxl) + deltalake", "load-ndjson": "pyarrow.json + deltalake"}
for kind, what in (("xlsx", "100,000-row .xlsx"), ("ndjson", "~500 MB .ndjson")):
    meds = {}
    for who in ("deltadrop", "load-xlsx-calamine", "load-xlsx-pandas", "load-ndjson"):
        runs = [r for r in rs if r["kind"] == kind and r["who"] == who]
        if not runs:
            continue
        secs = [r["seconds"] for r in runs]
        meds[who] = m = statistics.median(secs)
        rows, size = runs[0]["rows"], runs[0]["bytes"]
        extra = ""
        if who == "deltadrop":
            cpu = statistics.median(r["cpu"] for r in runs)
            rss = statistics.median(r["rss_kib"] for r in runs) / 1024
            extra = f" (CPU {cpu:.2f} s, peak RSS {rss:.0f} MiB)"
        adv = "" if who == "deltadrop" else f"{m / meds['deltadrop']:.2f}×"
        print(f"| {what} | {names[who]}{extra} | {m:.2f} ({min(secs):.2f}–{max(secs):.2f}) | "
              f"{rows / m:,.0f} | {size / 1e6 / m:.1f} | {adv} |")
PY
