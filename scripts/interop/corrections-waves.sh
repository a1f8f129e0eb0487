#!/usr/bin/env bash
# Two waves of sales files for a feed whose rows change (on_resend = "replace",
# merge_key = ["sale_id"]), shared by the Python and Spark checks of corrections.
#
#   scripts/interop/corrections-waves.sh OUTDIR
#
# OUTDIR/wave1: three files. OUTDIR/wave2: a corrected re-export of wave 1's first file under the
# same name (its last 50 rows gone, every total one cent higher), and upsert.csv: 40 rows of wave 1's
# second file with other totals (updates) then 20 new sales, one of which comes twice (the last wins).
# python_read.latest_rows(wave1, wave2) is what the table must hold after both waves.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out/wave1" "$out/wave2" "$out/new"
"$here/../gen-sales.sh" -n 3 -r 200 -s 31 -o "$out/wave1" 2>/dev/null
"$here/../gen-sales.sh" -n 1 -r 20 -s 32 -o "$out/new" 2>/dev/null
first=$(basename "$(ls "$out/wave1"/*.csv | head -n 1)")
second=$(ls "$out/wave1"/*.csv | sed -n 2p)
# Totals are column 7; a cent more keeps them decimal(14,2).
awk -F, -v OFS=, 'NR == 1 { print; next } NR <= 151 { $7 = sprintf("%.2f", $7 + 0.01); print }' \
  "$out/wave1/$first" > "$out/wave2/$first"
{
  head -n 1 "$second"
  awk -F, -v OFS=, 'NR > 1 && NR <= 41 { $7 = sprintf("%.2f", $7 * 2); print }' "$second"
  tail -n +2 "$out/new"/*.csv
  # A key twice in one file: the last row wins.
  awk -F, -v OFS=, 'NR == 2 { $7 = "1.00"; print }' "$out/new"/*.csv
} > "$out/wave2/upsert.csv"
rm -rf "$out/new"
