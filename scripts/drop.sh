#!/usr/bin/env bash
# Drops files into a deltadrop inbox atomically: each file is copied under a hidden temp name
# (ignored by deltadrop), then renamed to its real name — the rename is what deltadrop sees.
#
#   scripts/drop.sh INBOX FILE...
#
# INBOX must be on one filesystem with itself (the copy lands there first), so a half-copied
# file is never picked up, whatever the size.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
inbox=$1; shift
[[ -d "$inbox" ]] || { echo "drop: $inbox is not a folder (run 'deltadrop init' first?)" >&2; exit 2; }
n=0
for f in "$@"; do
  [[ -f "$f" ]] || { echo "drop: $f is not a file" >&2; exit 2; }
  name=$(basename -- "$f")
  tmp="$inbox/.$name.$$.tmp"
  cp -- "$f" "$tmp"
  mv -f -- "$tmp" "$inbox/$name"
  n=$((n + 1))
done
echo "dropped $n file(s) into $inbox" >&2
