#!/usr/bin/env bash
# Generates realistic sales CSV files for deltadrop, deterministically from a seed.
#
#   scripts/gen-sales.sh [-n FILES] [-r ROWS] [-s SEED] [-o OUTDIR] [-p PREFIX]
#                        [--locale pt-BR] [--encoding windows-1252]
#
# Defaults: 10 files × 1000 rows, seed 42, into ./generated, named sales-<seed>-<n>.csv.
# --locale pt-BR writes what Brazilian ERPs export: ';' separators, decimal comma with thousands
# dots (1.234,56), dd/MM/yyyy HH:mm:ss times, Portuguese payment names; load it with
# `locale = "pt-BR"`. --encoding converts the files (iconv), e.g. to windows-1252.
# The same seed gives the same files (on the same awk); sale ids are unique across files and seeds
# (<prefix><seed>-<file>-<row>). Totals are exact: quantity × unit_price in cents.
set -euo pipefail

files=10 rows=1000 seed=42 out=generated prefix=S locale=en encoding=
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
# Long options first (getopts knows only short ones).
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --locale) locale=${2:?--locale needs a value}; shift 2 ;;
    --locale=*) locale=${1#--locale=}; shift ;;
    --encoding) encoding=${2:?--encoding needs a value}; shift 2 ;;
    --encoding=*) encoding=${1#--encoding=}; shift ;;
    --help) usage 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]+"${args[@]}"}"
case "$locale" in
  en|en-US|C) locale=en ;;
  pt-BR|pt_BR|ptbr) locale=pt-BR ;;
  *) echo "gen-sales: --locale takes en or pt-BR" >&2; exit 2 ;;
esac
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

awk -v files="$files" -v rows="$rows" -v seed="$seed" -v out="$out" -v prefix="$prefix" -v locale="$locale" '
# 1234567 cents → "12.345,67" (pt-BR) or "12345.67".
function money(c,    neg, i, s, out) {
  if (locale != "pt-BR") return sprintf("%d.%02d", int(c / 100), c % 100)
  s = sprintf("%d", int(c / 100)); out = ""
  for (i = length(s); i > 3; i -= 3) out = "." substr(s, i - 2, 3) out
  return substr(s, 1, i) out sprintf(",%02d", c % 100)
}
BEGIN {
  srand(seed)
  if (locale == "pt-BR") { split("crédito débito pix dinheiro vale", pay, " "); sep = ";" }
  else { split("credit debit pix cash voucher", pay, " "); sep = "," }
  for (f = 1; f <= files; f++) {
    path = sprintf("%s/sales-%d-%05d.csv", out, seed, f)
    h = "sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id"
    gsub(",", sep, h)
    print h > path
    for (r = 1; r <= rows; r++) {
      day = 1 + int(rand() * 28); h = int(rand() * 24); m = int(rand() * 60); s = int(rand() * 60)
      store = 1 + int(rand() * 50); product = 1 + int(rand() * 5000)
      qty = 1 + int(rand() * 10); cents = 50 + int(rand() * 99950)
      total = qty * cents
      cust = (rand() < 0.2) ? "" : sprintf("C%06d", 1 + int(rand() * 200000))
      if (locale == "pt-BR")
        when = sprintf("%02d/03/2024 %02d:%02d:%02d", day, h, m, s)
      else
        when = sprintf("2024-03-%02dT%02d:%02d:%02dZ", day, h, m, s)
      printf "%s%d-%d-%d%s%s%sST%03d%sP%05d%s%d%s%s%s%s%s%s%s%s\n", \
        prefix, seed, f, r, sep, when, sep, store, sep, product, sep, qty, sep, money(cents), \
        sep, money(total), sep, pay[1 + int(rand() * 5)], sep, cust > path
    }
    close(path)
  }
}'
if [[ -n "$encoding" ]]; then
  command -v iconv >/dev/null || { echo "gen-sales: --encoding needs iconv" >&2; exit 2; }
  for f in "$out"/sales-"$seed"-*.csv; do
    iconv -f UTF-8 -t "$encoding" "$f" > "$f.tmp" && mv "$f.tmp" "$f"
  done
fi
echo "wrote $files file(s) × $rows row(s) to $out/ ($locale${encoding:+, $encoding})" >&2
