#!/usr/bin/env bash
# Generates realistic sales CSV files for deltadrop, deterministically from a seed.
#
#   scripts/gen-sales.sh [-n FILES] [-r ROWS] [-s SEED] [-o OUTDIR] [-p PREFIX]
#
# Defaults: 10 files × 1000 rows, seed 42, into ./generated, named sales-<seed>-<n>.csv.
# The same seed gives the same files (on the same awk); sale ids are unique across files and seeds
# (<prefix><seed>-<file>-<row>). Totals are exact: quantity × unit_price in cents.
set -euo pipefail

files=10 rows=1000 seed=42 out=generated prefix=S
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while getopts "n:r:s:o:p:h" opt; do
  case "$opt" in
    n) files=$OPTARG ;;
    r) rows=$OPTARG ;;
    s) seed=$OPTARG ;;
    o) out=$OPTARG ;;
    p) prefix=$OPTARG ;;
    h) usage 0 ;;
    *) usage 2 ;;
  esac
done
[[ "$files" =~ ^[0-9]+$ && "$rows" =~ ^[0-9]+$ && "$seed" =~ ^[0-9]+$ ]] || { echo "gen-sales: -n, -r and -s take whole numbers" >&2; exit 2; }
mkdir -p "$out"

awk -v files="$files" -v rows="$rows" -v seed="$seed" -v out="$out" -v prefix="$prefix" '
BEGIN {
  srand(seed)
  split("credit debit pix cash voucher", pay, " ")
  for (f = 1; f <= files; f++) {
    path = sprintf("%s/sales-%d-%05d.csv", out, seed, f)
    print "sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id" > path
    for (r = 1; r <= rows; r++) {
      day = 1 + int(rand() * 28); h = int(rand() * 24); m = int(rand() * 60); s = int(rand() * 60)
      store = 1 + int(rand() * 50); product = 1 + int(rand() * 5000)
      qty = 1 + int(rand() * 10); cents = 50 + int(rand() * 99950)
      total = qty * cents
      cust = (rand() < 0.2) ? "" : sprintf("C%06d", 1 + int(rand() * 200000))
      printf "%s%d-%d-%d,2024-03-%02dT%02d:%02d:%02dZ,ST%03d,P%05d,%d,%d.%02d,%d.%02d,%s,%s\n", \
        prefix, seed, f, r, day, h, m, s, store, product, qty, int(cents / 100), cents % 100, \
        int(total / 100), total % 100, pay[1 + int(rand() * 5)], cust > path
    }
    close(path)
  }
}'
echo "wrote $files file(s) × $rows row(s) to $out/" >&2
