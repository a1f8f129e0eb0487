#!/usr/bin/env bash
# The site both interop checks read back (Python and Spark): sales files, an edge-case file and a
# file with one bad row, ingested by `deltadrop run --once`.
#
#   scripts/interop/make-site.sh DELTADROP_BINARY SITE [FEED_LINES]
#
# FEED_LINES (TOML) are appended to the feed's block: a cloud table, say, with its storage options.
# Leaves SITE/expected/*.csv (what the table must hold), SITE/lake/sales and
# SITE/lake/_quarantine/sales (the bad row: bad-row.csv, line 2, column unit_price).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 site=$2 feed_lines=${3:-}
mkdir -p "$site/inbox" "$site/expected"
"$here/../gen-sales.sh" -n 20 -r 500 -s 11 -o "$site/expected" 2>/dev/null
# Columns out of order on purpose (deltadrop maps by header name). Each row is a trap for a reader:
# a null, a time zone offset, accents with quoted commas and doubled quotes, the largest decimals the
# columns hold, a leap day as a bare date and as a time shifted across midnight, microseconds.
cp "$here/edge-cases.csv" "$site/expected/"
cp "$site/expected"/*.csv "$site/inbox/"
# A row that cannot load: it must reach the quarantine table, and readers must see it there.
printf 'sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id\nQ-1,2024-03-01T10:00:00Z,ST1,P1,1,12.3x,1.00,pix,C1\n' > "$site/inbox/bad-row.csv"
printf '[http]\nenabled = false\n[[feed]]\nname = "sales"\n%s\n' "$feed_lines" > "$site/config.toml"
(cd "$site" && RUST_LOG=warn "$bin" run --once --config config.toml)
