#!/usr/bin/env bash
# Takes the screenshot of the operator's page that README shows (docs/page.png): a daemon with
# two feeds (one of them Brazilian exports), files dropped for a while — some with bad rows, one
# that is not CSV — with maintenance running, then headless Chromium on http://127.0.0.1:PORT/.
#
#   scripts/page-screenshot.sh [SECONDS] [OUT.png]     # defaults: 90, docs/page.png
#
# Needs Debian's chromium (apt-get install chromium), or CHROMIUM=/path/to/chrome.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-90}
out=$(realpath -m "${2:-$repo/docs/page.png}")
source "$repo/scripts/lib/cargo-target.sh"
[[ -n "${DELTADROP_BIN:-}" ]] || (cd "$repo" && cargo build --quiet)
bin=$(deltadrop_binary "$repo" "${DELTADROP_BIN:-}")
chromium=${CHROMIUM:-/usr/bin/chromium}
[[ -x "$chromium" ]] || { echo "page-screenshot: no Chromium at $chromium (apt-get install chromium)" >&2; exit 2; }

site=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$site"' EXIT
cd "$site"
cat > config.toml <<'TOML'
poll_interval = "1s"
settle = "200ms"
[http]
listen = "127.0.0.1:0"

[[feed]]
name = "sales"
inbox = "inbox/sales"
table = "lake/sales"
checkpoint_interval = 20
maintenance_interval = "30s"

[[feed]]
name = "erp_ptbr"
inbox = "inbox/erp"
table = "lake/erp"
schema = "infer"
locale = "pt-BR"
maintenance_interval = "30s"
TOML
mkdir -p inbox/sales inbox/erp gen
RUST_LOG=info "$bin" run --config config.toml 2> daemon.log &
pid=$!
for _ in $(seq 100); do [[ -s .deltadrop/http.addr ]] && break; sleep 0.1; done
addr=$(cat .deltadrop/http.addr)

"$repo/scripts/gen-sales.sh" -n 400 -r 200 -s 7 -o gen/sales >/dev/null
"$repo/scripts/gen-sales.sh" -n 200 -r 300 -s 8 -o gen/erp --locale pt-BR >/dev/null
sales=(gen/sales/*.csv) erp=(gen/erp/*.csv)
end=$((SECONDS + seconds)) i=0
while (( SECONDS < end )); do
  f=${sales[$((i % ${#sales[@]}))]}
  # Every seventh file carries two bad rows (a quantity that is not a number, a bad date).
  if (( i % 7 == 3 )); then
    { cat "$f"; echo "bad-$i-1,2024-03-01T10:00:00Z,ST1,P1,two,1.00,2.00,pix,C1";
      echo "bad-$i-2,yesterday,ST1,P1,1,1.00,1.00,pix,<b>C2</b>"; } > "gen/x-$i.csv"
    f="gen/x-$i.csv"
  fi
  "$repo/scripts/drop.sh" inbox/sales "$f" 2>/dev/null
  (( i % 2 == 0 )) && "$repo/scripts/drop.sh" inbox/erp "${erp[$((i % ${#erp[@]}))]}" 2>/dev/null
  (( i == 20 )) && printf 'PK\003\004 not a CSV' > "inbox/sales/relatorio-vendas.xlsx.csv"
  i=$((i + 1))
  sleep "0.$((RANDOM % 9 + 1))"
done
sleep 2
mkdir -p "$(dirname "$out")"
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$site/chromium" --virtual-time-budget=5000 --window-size=1280,2400 \
  --screenshot="$out" "http://$addr/" 2>/dev/null
echo "page-screenshot: $i drops over $seconds s → $out" >&2
