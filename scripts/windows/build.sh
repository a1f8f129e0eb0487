#!/usr/bin/env bash
# Cross-builds deltadrop.exe for 64-bit Windows (x86_64-pc-windows-gnu) with mingw-w64, and the
# hold_open.exe test helper. Installs the Rust target (rustup) and Debian's mingw-w64 if missing.
#
#   scripts/windows/build.sh [--release]      # prints the path of deltadrop.exe
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
profile=debug flags=()
[[ "${1:-}" == "--release" ]] && { profile=release; flags=(--release); }
target=x86_64-pc-windows-gnu

rustup target list --installed 2>/dev/null | grep -qx "$target" ||
  rustup target add "$target" >&2
if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
  sudo=; [[ $(id -u) -eq 0 ]] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends gcc-mingw-w64-x86-64 >/dev/null ||
    { $sudo apt-get update -q >/dev/null &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends gcc-mingw-w64-x86-64 >/dev/null; }
fi
cd "$repo"
cargo build --quiet --target "$target" "${flags[@]}" --bin deltadrop --example hold_open >&2
source scripts/lib/cargo-target.sh
echo "$(cargo_target_dir "$repo")/$target/$profile/deltadrop.exe"
