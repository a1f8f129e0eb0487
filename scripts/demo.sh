#!/usr/bin/env bash
# A two-minute tour: init a folder, run the daemon, drop generated sales files, show the table.
#
#   scripts/demo.sh [DIR]      (default: ./demo; an existing DIR is reused, never emptied)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
dir=${1:-demo}
bin=${DELTADROP:-}
if [[ -z "$bin" ]]; then
  # shellcheck source=lib/cargo-target.sh
  source "$here/lib/cargo-target.sh"
  (cd "$repo" && cargo build --release --quiet)
  bin="$(cargo_target_dir "$repo")/release/deltadrop"
fi

mkdir -p "$dir"
cd "$dir"
[[ -f config.toml ]] || "$bin" init .
"$bin" check --config config.toml

"$bin" run --config config.toml 2> deltadrop.log &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT

"$here/gen-sales.sh" -n 5 -r 1000 -s "$RANDOM" -o generated
"$here/drop.sh" inbox generated/*.csv
rm -rf generated

# Wait (with a deadline) until the inbox is empty: no file left that deltadrop would take
# (hidden names never are: a shared inbox's claim folder is one).
for _ in $(seq 1 300); do
  [[ -z "$(ls inbox)" ]] && break
  sleep 0.1
done
kill -TERM $pid; wait $pid || true
trap - EXIT

echo; echo "--- daemon log"; tail -n 8 deltadrop.log
echo; echo "--- table versions"; ls lake/sales/_delta_log | grep -c '\.json$'
echo "--- processed files"; ls processed | tail -n 5
if python3 -c "import deltalake" 2>/dev/null; then
  echo; echo "--- the table, read with Python deltalake"
  python3 - <<'PY'
from deltalake import DeltaTable
t = DeltaTable("lake/sales")
tbl = t.to_pyarrow_table()
print(f"version {t.version()}, {tbl.num_rows} rows")
print(tbl.slice(0, 5).to_pandas() if hasattr(tbl, "to_pandas") else tbl.slice(0, 5))
PY
else
  echo "(pip install deltalake to read the table from Python)"
fi
