#!/usr/bin/env bash
# Interop check: deltadrop writes a table (run --once), Python `deltalake` and polars read it
# back and compare every value with the CSV input. Installs its Python packages in a venv.
#
#   scripts/interop-python.sh [DELTADROP_BINARY]    (default: target/debug/deltadrop)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
bin=$(deltadrop_binary "$repo" "${1:-}")
cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
venv="$cache/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  deltalake==1.6.6 pyarrow==26.0.1 polars==2.1.0

site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
"$here/interop/make-site.sh" "$bin" "$site"
"$venv/bin/python" "$here/interop/python_read.py" "$site/lake/sales" "$site/expected"
"$venv/bin/python" - "$site/lake/_quarantine/sales" <<'PY'
import sys
from deltalake import DeltaTable
rows = DeltaTable(sys.argv[1]).to_pyarrow_table().to_pylist()
assert len(rows) == 1, rows
r = rows[0]
assert (r["source_file"], r["line_number"], r["column"]) == ("bad-row.csv", 2, "unit_price"), r
assert r["error"] == "'12.3x' is not a decimal(12,2): not a number", r
assert r["raw_line"].startswith("Q-1,"), r
print("python deltalake: quarantine table OK (1 row, line 2, unit_price)", flush=True)
import os
os._exit(0)  # see python_read.py: skip a teardown that sometimes aborts
PY

# Corrections: a feed that replaces re-sent names and upserts by sale_id, two waves, each a run --once.
fix=$(mktemp -d)
trap 'rm -rf "$site" "$fix"' EXIT
"$here/interop/corrections-waves.sh" "$fix"
printf '[http]\nenabled = false\n[[feed]]\nname = "sales"\non_resend = "replace"\nmerge_key = ["sale_id"]\n' \
  > "$fix/config.toml"
for wave in wave1 wave2; do
  mkdir -p "$fix/inbox"
  cp "$fix/$wave"/*.csv "$fix/inbox/"
  (cd "$fix" && RUST_LOG=warn "$bin" run --once --config config.toml)
done
"$venv/bin/python" "$here/interop/corrections_check.py" "$fix/lake/sales" "$fix/wave1" "$fix/wave2"
