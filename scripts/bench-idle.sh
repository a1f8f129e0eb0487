#!/usr/bin/env bash
# What an idle deltadrop costs (not a test: results go to BENCHMARKS.md): wake-ups per second
# summed over its threads, CPU, resident memory and threads, with 1 feed and with FEEDS feeds,
# nothing arriving, events on, the poll every 5 s. See scripts/bench/idle.py for how.
#
#   scripts/bench-idle.sh [FEEDS] [SECONDS] [--no-write]      (defaults: 10 feeds, 30 s each)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
feeds=${1:-10}
seconds=${2:-30}
write=1
[[ "${3:-}" == "--no-write" ]] && write=0
cd "$repo"
# shellcheck source=lib/cargo-target.sh
source "$here/lib/cargo-target.sh"
bin="$(cargo_target_dir "$repo")/release/deltadrop"
[[ -x "$bin" ]] || cargo build --release --quiet
json=$(python3 "$here/bench/idle.py" --bin "$bin" --feeds "$feeds" --seconds "$seconds" \
  --dir "$repo/bench-out/idle")
echo "$json" >&2

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)
mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')
built=$(date -u -r "$bin" +%Y-%m-%dT%H:%MZ)
section=$(python3 - "$json" <<PY
import json, sys
runs = json.loads(sys.argv[1])
rows = []
for r in runs:
    who = ", ".join(f"{k} {v}" for k, v in r["by_thread"].items()) or "none"
    rows.append(f"| {r['feeds']} | {r['wakeups_per_s']} | {r['cpu_percent']} % | {r['rss_mib']} MiB | {r['threads']} | {who} |")
one, many = runs[0], runs[-1]
ok = lambda b: "pass" if b else "**miss**"
print(f"""## Idle (scripts/bench-idle.sh)

Machine: ${cpu:-unknown CPU}, $(nproc) cores, ${mem}; $(uname -sr); $(rustc --version).
Date: $(date -u +%Y-%m-%dT%H:%MZ). Release build of ${built}, events on, poll every 5 s, nothing
arriving; measured over {one['seconds']} s from 2 s after "watching". A wake-up is a context
switch of any of its threads (/proc/PID/task/*/status).

| feeds | wake-ups/s | CPU | resident | threads | wake-ups/s by thread |
|---|---|---|---|---|---|
""" + "\n".join(rows) + f"""

| target | result | |
|---|---|---|
| ≤ 10 wake-ups/s | {one['wakeups_per_s']} (1 feed), {many['wakeups_per_s']} ({many['feeds']} feeds) | {ok(max(one['wakeups_per_s'], many['wakeups_per_s']) <= 10)} |
| ≤ 0.5 % of a core | {one['cpu_percent']} %, {many['cpu_percent']} % | {ok(max(one['cpu_percent'], many['cpu_percent']) <= 0.5)} |
| ≤ 32 MiB resident | {one['rss_mib']} MiB, {many['rss_mib']} MiB | {ok(max(one['rss_mib'], many['rss_mib']) <= 32)} |
""")
PY
)
echo "$section"
[[ $write -eq 1 ]] || exit 0
python3 - "$repo/BENCHMARKS.md" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2].strip() + "\n"
text = open(path).read()
start, end = "<!-- bench-idle:start -->", "<!-- bench-idle:end -->"
block = f"{start}\n{section}{end}\n"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end) + "\n?", lambda m: block, text, flags=re.S)
else:
    text = text.replace("<!-- bench-latency:start -->", block + "\n<!-- bench-latency:start -->", 1)
open(path, "w").write(text)
PY
echo "wrote BENCHMARKS.md" >&2
