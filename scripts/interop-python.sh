#!/usr/bin/env bash
# Interop check: deltadrop writes a table (run --once), Python `deltalake` and polars read it
# back and compare every value with the CSV input. Installs its Python packages in a venv.
#
#   scripts/interop-python.sh [DELTADROP_BINARY]    (default: target/debug/deltadrop)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=${1:-$repo/target/debug/deltadrop}
[[ -x "$bin" ]] || (cd "$repo" && cargo build --quiet)
bin=$(realpath "$bin")
cache=${DELTADROP_CACHE:-$HOME/.cache/deltadrop}
venv="$cache/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  deltalake==1.6.6 pyarrow==26.0.1 polars==2.1.0

site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
mkdir -p "$site/inbox" "$site/expected"
"$here/gen-sales.sh" -n 20 -r 500 -s 11 -o "$site/expected" 2>/dev/null
cat > "$site/expected/edge-cases.csv" <<'CSV'
customer_id,sale_id,payment_method,sold_at,store_id,product_id,quantity,unit_price,total
,E-1,pix,2024-03-01 11:05:00-03:00,ST1,P1,1,0.01,0.01
"Zé Ação, Ltda.",E-2,"crédito ""à vista""",2024-12-31T23:59:59.999999Z,ST2,P2,3,9999999999.99,29999999999.97
C9,E-3,dinheiro,2024-02-29,ST3,P3,-2,-1.5,3.00
CSV
cp "$site/expected"/*.csv "$site/inbox/"
# A row that cannot load: it must reach the quarantine table, readable from Python too.
printf 'sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id\nQ-1,2024-03-01T10:00:00Z,ST1,P1,1,12.3x,1.00,pix,C1\n' > "$site/inbox/bad-row.csv"
(cd "$site" && printf '[[feed]]\nname = "sales"\n' > config.toml && RUST_LOG=warn "$bin" run --once --config config.toml)
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
print("python deltalake: quarantine table OK (1 row, line 2, unit_price)")
PY
