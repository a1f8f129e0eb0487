#!/usr/bin/env bash
# Spark interop check: what deltadrop writes, Spark 4 + Delta reads, batch and streaming.
#
#   scripts/spark-check.sh [DELTADROP_BINARY]    (default: target/debug/deltadrop)
#
# 1. read: `run --once` on sales files, an edge-case file and a file with one bad row; Spark reads the
#    table and the quarantine table and compares every value with the CSVs (scripts/interop/spark_check.py).
# 2. stream: the daemon runs, scripts/spark_sales_report.py streams the table into a per-store, per-minute
#    gold table; files are dropped in two waves (the second updating minutes of the first), the gold
#    table must match the CSVs after each; `deltadrop maintain` then compacts the table (an OPTIMIZE
#    commit, dataChange = false); the job is stopped, one more file is dropped and an --available-now
#    run from the same checkpoint must add exactly that file — not the compacted rows again.
# 4. corrections: a feed with on_resend = "replace" and merge_key; the report streams the change data feed
#    and its gold table must equal the sums of the latest rows after a correction and an upsert; Spark
#    reads the table and readChangeFeed (scripts/interop/spark_changes.py).
# 3. azure: the same site as 1 with both tables on a real Azurite (scripts/azurite.sh), read back by Spark
#    through abfs:// with hadoop-azure (fetched like the Delta jars) and checked the same way.
# Installs pyspark, delta-spark and the Delta jars on first use (scripts/lib/spark-env.sh).
# About 3–4 minutes on 2 cores once the cache is warm.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
bin=$(deltadrop_binary "$repo" "${1:-}")
# shellcheck source-path=SCRIPTDIR source=lib/spark-env.sh
source "$here/lib/spark-env.sh"
py=$DELTADROP_PY

work=$(mktemp -d)
daemon_pid='' report_pid='' azurite_dir=''
# Each background process is stopped by its own id; the report job leads its own process group
# (setsid) so its JVM child goes with it.
cleanup() {
  local rc=$?
  if [[ -n "$report_pid" ]]; then kill -TERM -- "-$report_pid" 2>/dev/null || true; fi
  if [[ -n "$daemon_pid" ]]; then kill -TERM "$daemon_pid" 2>/dev/null || true; fi
  if [[ -n "$azurite_dir" ]]; then "$here/azurite.sh" stop "$azurite_dir" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if [[ $rc -ne 0 && -z "${KEEP_SITE:-}" ]]; then
    for log in "$work"/stream/daemon.log "$work"/stream/report*.log; do
      [[ -s "$log" ]] && { echo "--- last lines of $log" >&2; tail -n 20 "$log" >&2; }
    done
  fi
  if [[ -n "${KEEP_SITE:-}" ]]; then echo "spark-check: site kept in $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
# An interrupted check must still stop the daemon and the Spark job: exit through the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM
fail() { echo "spark-check: FAILED: $*" >&2; exit 1; }

# Polls for a path with a deadline; a fixed sleep would be either too short on a loaded machine or waste time.
wait_for() { # PATH SECONDS WHAT
  local deadline=$((SECONDS + $2))
  until [[ -e "$1" ]]; do
    ((SECONDS < deadline)) || fail "$3 did not appear within $2 s ($1)"
    sleep 0.2
  done
}

t0=$SECONDS
# --- 1. read ------------------------------------------------------------------------------------------
site="$work/read"
"$here/interop/make-site.sh" "$bin" "$site" || fail "deltadrop run --once failed"
"$py" "$here/interop/spark_check.py" "$site/lake/sales" "$site/lake/_quarantine/sales" "$site/expected" \
  || fail "Spark read check"
# A table inferred from headers Spark cannot use as they are (folded names), dd/MM/yyyy dates.
names="$work/names"
mkdir -p "$names/inbox"
printf 'Sale ID,Unit Price (R$),Sold On,Notes\n1,1.50,13/02/2024,ok\n2,NA,01/03/2024,\n3,10.25,31/12/2024,"last, with a comma"\n' \
  > "$names/inbox/names.csv"
printf '[http]\nenabled = false\n[[feed]]\nname = "names"\nschema = "infer"\ntable = "lake/names"\n' > "$names/config.toml"
(cd "$names" && RUST_LOG=warn "$bin" run --once --config config.toml) || fail "deltadrop run --once (names) failed"
"$py" "$here/interop/spark_names.py" "$names/lake/names" || fail "Spark names check"
# The same file under column_names = "original": the names as written, through column mapping.
mkdir -p "$names/original/inbox"
printf 'Sale ID,Unit Price (R$),Sold On,Notes\n1,1.50,13/02/2024,ok\n2,NA,01/03/2024,\n3,10.25,31/12/2024,"last, with a comma"\n' \
  > "$names/original/inbox/names.csv"
printf '[http]\nenabled = false\n[[feed]]\nname = "names"\nschema = "infer"\ncolumn_names = "original"\ntable = "lake/names"\n' \
  > "$names/original/config.toml"
(cd "$names/original" && RUST_LOG=warn "$bin" run --once --config config.toml) || fail "deltadrop run --once (original names) failed"
"$py" "$here/interop/spark_names.py" "$names/original/lake/names" original || fail "Spark original names check"
# JSON lines objects and arrays as Delta structs and arrays, names folded and as written.
"$here/interop/nested-site.sh" "$bin" "$work/nested" || fail "deltadrop run --once (nested) failed"
"$py" "$here/interop/spark_nested.py" "$work/nested/plain/lake/orders" || fail "Spark nested check"
"$py" "$here/interop/spark_nested.py" "$work/nested/original/lake/orders" original || fail "Spark nested (original names) check"
t_read=$((SECONDS - t0))

# --- 2. stream ----------------------------------------------------------------------------------------
t1=$SECONDS
site="$work/stream"
mkdir -p "$site/inbox" "$site/wave1" "$site/wave2" "$site/wave3"
"$here/gen-sales.sh" -n 4 -r 250 -s 21 -o "$site/wave1" 2>/dev/null
"$here/gen-sales.sh" -n 4 -r 250 -s 22 -o "$site/wave2" 2>/dev/null
"$here/gen-sales.sh" -n 1 -r 100 -s 23 -o "$site/wave3" 2>/dev/null
# Late rows: same store and time as rows of wave 1, new ids. Random times rarely share a minute, so
# without these wave 2 would only insert gold rows and never prove that a minute is updated.
awk -F, -v OFS=, 'NR == 1 { print; next } NR <= 51 { $1 = "L-" $1; print }' \
  "$site/wave1/sales-21-00001.csv" > "$site/wave2/late-rows.csv"
# No status endpoint: its fixed port would clash with any other deltadrop running on this machine.
printf '[http]\nenabled = false\n\n[[feed]]\nname = "sales"\n' > "$site/config.toml"
(cd "$site" && RUST_LOG=info exec "$bin" run --config config.toml 2> daemon.log) &
daemon_pid=$!
wait_for "$site/lake/sales/_delta_log/00000000000000000000.json" 30 "the daemon's table"
setsid "$py" "$here/spark_sales_report.py" "$site/lake/sales" "$site/gold" "$site/checkpoint" \
  --trigger "2 seconds" > "$site/report.log" 2>&1 &
report_pid=$!
# Wave 1 lands while Spark is still starting: the stream must pick up commits made before it began.
"$here/drop.sh" "$site/inbox" "$site/wave1"/*.csv 2>/dev/null
"$py" "$here/interop/gold_check.py" "$site/gold" "$site/wave1" --deadline 180 --pid "$report_pid" \
  --label "stream wave 1" || fail "gold table after wave 1"
"$here/drop.sh" "$site/inbox" "$site/wave2"/*.csv 2>/dev/null
"$py" "$here/interop/gold_check.py" "$site/gold" "$site/wave1" "$site/wave2" --deadline 120 --pid "$report_pid" \
  --label "stream wave 2" || fail "gold table after wave 2"
# Maintenance while both run: compaction rewrites every small file of the table. Its OPTIMIZE commit
# says dataChange = false, so the stream (which reads it after the restart below) must add nothing.
(cd "$site" && RUST_LOG=warn "$bin" maintain --config config.toml --feed sales --compact-min-files 2 --json) \
  > "$site/maintain.json" || fail "deltadrop maintain"
"$py" - "$site/maintain.json" <<'PY' || fail "maintain compacted nothing"
import json, sys
r = json.load(open(sys.argv[1]))[0]
assert r["compacted"] >= 2 and r["compaction_version"] is not None, r
print(f"maintain: {r['compacted']} small files -> {r['written']} at version {r['compaction_version']}, stream still running")
PY
# A clean stop, then a restart from the checkpoint: only the new file may be added, nothing twice.
# SIGTERM to the Python driver only: the JVM would take it as its own shutdown and stop the SparkContext
# under the query; the driver stops the query, then the JVM, which exits when its driver does.
kill -TERM "$report_pid"
stopped=0
for _ in $(seq 1 300); do
  kill -0 "$report_pid" 2>/dev/null || { stopped=1; break; }
  sleep 0.1
done
((stopped)) || fail "the streaming job did not stop within 30 s of SIGTERM"
wait "$report_pid" || fail "the streaming job exited non-zero after SIGTERM"
report_pid=
"$here/drop.sh" "$site/inbox" "$site/wave3"/*.csv 2>/dev/null
wait_for "$site/processed/sales-23-00001.csv" 60 "wave 3's committed file"
"$py" "$here/spark_sales_report.py" "$site/lake/sales" "$site/gold" "$site/checkpoint" --available-now \
  > "$site/report-available-now.log" 2>&1 || fail "spark_sales_report.py --available-now"
"$py" "$here/interop/gold_check.py" "$site/gold" "$site/wave1" "$site/wave2" "$site/wave3" --deadline 0 \
  --label "restart --available-now" || fail "gold table after the restart"
t_stream=$((SECONDS - t1))

# --- 4. corrections ---------------------------------------------------------------------------------
# A feed whose rows change: a re-sent name replaces what it loaded, rows upsert by sale_id. The report
# streams the table's change data feed; after a correction and an upsert, the gold table must equal the
# sums of the latest version of every row (python_read.latest_rows). Spark then reads the table and its
# change feed in batch (scripts/interop/spark_changes.py).
t3=$SECONDS
# The stream step's daemon is done: one daemon at a time (the trap stops only the last one).
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the stream step's daemon exited non-zero after SIGTERM"
daemon_pid=
site="$work/fix"
mkdir -p "$site/inbox"
"$here/interop/corrections-waves.sh" "$site"
printf '[http]\nenabled = false\n\n[[feed]]\nname = "sales"\non_resend = "replace"\nmerge_key = ["sale_id"]\n' \
  > "$site/config.toml"
(cd "$site" && RUST_LOG=info exec "$bin" run --config config.toml 2> daemon.log) &
daemon_pid=$!
wait_for "$site/lake/sales/_delta_log/00000000000000000000.json" 30 "the daemon's table"
"$here/drop.sh" "$site/inbox" "$site/wave1"/*.csv 2>/dev/null
setsid "$py" "$here/spark_sales_report.py" "$site/lake/sales" "$site/gold" "$site/checkpoint" \
  --trigger "2 seconds" > "$site/report.log" 2>&1 &
report_pid=$!
"$py" "$here/interop/gold_check.py" "$site/gold" "$site/wave1" --corrections --deadline 180 --pid "$report_pid" \
  --label "corrections wave 1" || fail "gold table after corrections wave 1"
"$here/drop.sh" "$site/inbox" "$site/wave2"/*.csv 2>/dev/null
"$py" "$here/interop/gold_check.py" "$site/gold" "$site/wave1" "$site/wave2" --corrections --deadline 120 \
  --pid "$report_pid" --label "corrections wave 2 (a replace and an upsert)" || fail "gold table after the corrections"
kill -TERM "$report_pid"
wait "$report_pid" || fail "the streaming job exited non-zero after SIGTERM"
report_pid=
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "the daemon exited non-zero after SIGTERM"
daemon_pid=
"$py" "$here/interop/spark_changes.py" "$site/lake/sales" "$site/wave1" "$site/wave2" || fail "Spark change feed check"
t_fix=$((SECONDS - t3))

# --- 3. azure -----------------------------------------------------------------------------------------
t2=$SECONDS
azurite_dir="$work/azurite"
exports=$("$here/azurite.sh" start "$azurite_dir") || fail "starting Azurite"
eval "$exports"
deltadrop_spark_azure_jars || fail "fetching hadoop-azure"
# The table URL only: the emulator and its key come from the environment azurite.sh exported.
"$here/interop/make-site.sh" "$bin" "$work/azure" 'table = "az://lake/sales"' \
  || fail "deltadrop run --once onto Azurite"
abfs="abfs://lake@$AZURE_STORAGE_ACCOUNT_NAME.dfs.core.windows.net"
"$py" "$here/interop/spark_check.py" "$abfs/sales" "$abfs/_quarantine/sales" "$work/azure/expected" \
  || fail "Spark read check on Azurite"
t_azure=$((SECONDS - t2))

echo "spark-check OK: read ${t_read} s, stream ${t_stream} s, corrections ${t_fix} s, azure ${t_azure} s, total $((SECONDS - t0)) s"
