#!/usr/bin/env bash
# JSON lines with nested objects and arrays, for the interop checks (Delta Kernel Java and Spark):
# two tables from the same lines, ingested by `deltadrop run --once`.
#   SITE/plain/lake/orders   schema = "infer", nested = "struct" (the default), Spark-safe names:
#                            customer struct<name, cidade_natal, since date, score decimal(18,2)>,
#                            items array<struct<sku, qty int64>>, tags array<string>;
#   SITE/original/lake/orders  the same under column_names = "original": every name as written
#                            (`Cidade Natal`) through column mapping, at every depth.
# Line 3 is not JSON: each table's quarantine holds it.
#
#   scripts/interop/nested-site.sh DELTADROP_BINARY SITE
set -euo pipefail
bin=$1 site=$2
for kind in plain original; do
  mkdir -p "$site/$kind/inbox"
  cat > "$site/$kind/inbox/orders.ndjson" <<'JSON'
{"order": 1, "customer": {"name": "Ana", "Cidade Natal": "Recife", "since": "2024-01-02", "score": 1.5}, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}], "tags": ["vip", "new"]}
{"order": 2, "customer": {"name": "Bia \"B\", Jr.", "score": 2}, "items": [], "tags": null}
{"order": 3 broken
{"order": 4, "customer": null, "items": [{"qty": 5, "sku": "C-3"}, {"sku": null, "qty": null}]}
JSON
  naming=''
  [[ $kind == original ]] && naming='column_names = "original"'
  printf '[http]\nenabled = false\n[[feed]]\nname = "orders"\ntable = "lake/orders"\nformat = "ndjson"\nschema = "infer"\n%s\n' \
    "$naming" > "$site/$kind/config.toml"
  (cd "$site/$kind" && RUST_LOG=warn "$bin" run --once --config config.toml)
done
