#!/usr/bin/env bash
# The listing cost of an inbox in object storage, on a real Azurite (issue 27): a daemon polls
# az://lake/bench/inbox/ every second; with 0 and then with 100,000 objects archived under
# the prefix (inbox/processed/), each is measured for
#   - CPU per poll: user + sys ticks of the daemon's process over 30 idle polls (/proc/PID/stat),
#   - requests per poll: every request it sends, counted by a proxy in front of Azurite
#     (scripts/lib/count-proxy.py), by kind (LIST, GET, PUT, HEAD, DELETE),
#   - upload → commit: an object uploaded, until the daemon logs its commit (median of 5),
#     against the bound of 2 × poll_interval.
#
#   scripts/bench-remote.sh [--objects N] [--bin PATH]
#
# Builds target/release/deltadrop if --bin is not given. Azurite comes from scripts/azurite.sh
# (npm, cached). Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
objects=100000 bin=
while [[ $# -gt 0 ]]; do
  case $1 in
    --objects) objects=${2:?}; shift 2 ;;
    --bin) bin=${2:?}; shift 2 ;;
    *) echo "usage: $0 [--objects N] [--bin PATH]" >&2; exit 2 ;;
  esac
done
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
if [[ -z $bin ]]; then
  (cd "$repo" && cargo build --quiet --release --bin deltadrop)
  bin="${CARGO_TARGET_DIR:-$repo/target}/release/deltadrop"
fi

work=$(mktemp -d)
daemon= proxy=
cleanup() {
  [[ -n $daemon ]] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  [[ -n $proxy ]] && kill "$proxy" 2>/dev/null
  bash "$here/azurite.sh" stop "$work/az" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# In memory: filling a disk-backed Azurite slows down as it grows (see azurite.sh).
eval "$(AZURITE_IN_MEMORY=1 bash "$here/azurite.sh" start "$work/az")"
python3 "$here/lib/count-proxy.py" "$AZURITE_PORT" "$work/proxy.port" &
proxy=$!
for _ in $(seq 100); do [[ -s $work/proxy.port ]] && break; sleep 0.05; done
export AZURITE_BLOB_STORAGE_URL="http://127.0.0.1:$(cat "$work/proxy.port")"
counts() { curl -s "$AZURITE_BLOB_STORAGE_URL/__count"; }

mkdir -p "$work/d"
cat >"$work/d/config.toml" <<TOML
poll_interval = "1s"
[http]
enabled = false
[[feed]]
name = "sales"
inbox = "az://lake/bench/inbox"
processed = "az://lake/bench/inbox/processed"
table = "az://lake/bench/sales"
[feed.storage_options]
azure_storage_use_emulator = "true"
TOML

sales() { # a small sales file whose ids start with $1
  echo "sale_id,sold_at,store_id,product_id,quantity,unit_price,total,payment_method,customer_id"
  for i in 1 2 3; do echo "$1-$i,2024-03-01T10:00:00Z,ST1,P$i,1,2.50,2.50,pix,C1"; done
}
upload() { bash "$here/azurite.sh" put "$work/az" "bench/inbox/$1" "$(sales "$1")" >/dev/null; }
commits() { grep -c "committed version" "$work/d/daemon.log" || true; }
wait_commits() { # until the log shows $1 commits (30 s at most)
  local deadline=$((SECONDS + 30))
  while (($(commits) < $1)); do
    ((SECONDS < deadline)) || { echo "no commit within 30 s:" >&2; tail -20 "$work/d/daemon.log" >&2; exit 1; }
    sleep 0.01
  done
}
ticks() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }

rows=()
measure() { # $1: label
  : >"$work/d/daemon.log"
  (cd "$work/d" && RUST_LOG=info exec "$bin" run --config config.toml 2>"$work/d/daemon.log") &
  daemon=$!
  local n
  n=$(commits)
  upload "warm-$RANDOM.csv"
  wait_commits $((n + 1))
  sleep 3
  local t0 c0 t1 c1
  t0=$(ticks) c0=$(counts)
  sleep 30
  t1=$(ticks) c1=$(counts)
  local hz
  hz=$(getconf CLK_TCK)
  local per_poll
  per_poll=$(python3 -c "
import json,sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
d = {k: b.get(k, 0) - a.get(k, 0) for k in b}
print(' + '.join(f'{v / 30:.2f} {k}' for k, v in sorted(d.items()) if v) or '0')" "$c0" "$c1")
  local cpu_ms
  cpu_ms=$(python3 -c "print(f'{($t1 - $t0) / $hz / 30 * 1000:.2f}')")
  local lat=()
  for i in 1 2 3 4 5; do
    n=$(commits)
    local s
    s=$(date +%s.%N)
    upload "probe-$1-$i.csv"
    wait_commits $((n + 1))
    lat+=("$(python3 -c "import time; print(f'{(time.time() - $s) * 1000:.0f}')")")
  done
  local med
  med=$(printf '%s\n' "${lat[@]}" | sort -n | sed -n 3p)
  rows+=("| $1 | $cpu_ms ms | $per_poll | $med ms (${lat[*]}) |")
  kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=
}

measure "0 objects archived"
echo "filling: $objects objects under bench/inbox/processed/" >&2
fill_start=$SECONDS
bash "$here/azurite.sh" fill "$work/az" bench/inbox/processed "$objects"
echo "filled in $((SECONDS - fill_start)) s" >&2
measure "$objects objects archived under the prefix"

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), azurite 3.35.0, poll_interval 1 s, $(basename "$bin")"
echo
echo "| inbox | CPU per poll (idle) | requests per poll | upload → commit, median of 5 |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
