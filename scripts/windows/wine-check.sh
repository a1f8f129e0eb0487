#!/usr/bin/env bash
# Runs deltadrop.exe under Wine (Debian's wine64) and checks it behaves as on Linux:
# tests/it/wine.rs (init, check, run --once on pt-BR files with Windows paths in the config, the
# daemon taking a renamed-in file and stopping on Ctrl-C, a file held open by a Windows writer
# waited for, inspect, the Windows service installed/started/stopped/removed through Wine's
# service manager, --once on many files), reading every table back on Linux.
#
#   scripts/windows/wine-check.sh [deltadrop.exe]
#
# Installs wine64 if missing and prepares a Wine prefix under ~/.cache/deltadrop/wine (or
# $DELTADROP_CACHE/wine), with the bcryptprimitives.dll stub Wine 8 needs (see the .c file).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
exe=${1:-$("$repo/scripts/windows/build.sh")}
exe=$(realpath "$exe")
helper=$(dirname "$exe")/examples/hold_open.exe
[[ -f "$helper" ]] || helper=$(dirname "$exe")/hold_open.exe

wine=$(command -v wine64 || true)
[[ -n "$wine" ]] || wine=/usr/lib/wine/wine64
if [[ ! -x "$wine" ]]; then
  sudo=; [[ $(id -u) -eq 0 ]] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends wine64 >/dev/null ||
    { $sudo apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends wine64 >/dev/null; }
fi
wineserver=$(dirname "$wine")/wineserver
export WINEPREFIX=${WINEPREFIX:-${DELTADROP_CACHE:-$HOME/.cache/deltadrop}/wine}
export WINEDEBUG=-all
stub="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [[ ! -f "$stub" ]]; then
  mkdir -p "$WINEPREFIX"
  "$wine" wineboot -i >/dev/null 2>&1 || true
  x86_64-w64-mingw32-gcc -shared -O2 -o "$stub" \
    "$repo/scripts/windows/bcryptprimitives.c" "$repo/scripts/windows/bcryptprimitives.def" -ladvapi32
fi
# A persistent wineserver: Wine stops services when its last process exits, and a service test
# needs the service to outlive the `sc` commands that start it. A server still running for this
# prefix (wineboot's, in a new prefix, lingers for seconds) would make `-p` fail: stop it first.
"$wineserver" -k 2>/dev/null || true
"$wineserver" -w 2>/dev/null || true
"$wineserver" -p
trap '"$wineserver" -k 2>/dev/null || true' EXIT
"$wine" "$exe" --version

cd "$repo"
log=$(mktemp)
if WINE="$wine" DELTADROP_EXE="$exe" HOLD_OPEN_EXE="$helper" \
    cargo test --test it -- --ignored wine:: --nocapture --test-threads 1 >"$log" 2>&1; then
  grep -oE "wine: .*|test result.*" "$log"
  rm -f "$log"
else
  { grep -vE '^\[[0-9T:.-]+Z ' "$log" || true; } | tail -n 80
  echo "wine-check: failed" >&2
  exit 1
fi
