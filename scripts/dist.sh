#!/usr/bin/env bash
# Builds the release artifacts into dist/: the Linux binary and deltadrop.exe (64-bit Windows,
# cross-built with mingw-w64 by scripts/windows/build.sh), stripped, each with the example
# config beside it, and SHA256SUMS over them (checked before the script ends).
#
#   scripts/dist.sh            # dist/deltadrop-VERSION-x86_64-linux, ...-x86_64-windows.exe, SHA256SUMS
#
# The Linux binary links this machine's glibc (Debian 12: glibc 2.36) and runs on systems with
# that glibc or newer. A clean release build compiles deltalake twice (once per target): ~13 min
# each on 2 cores; later runs reuse target/.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
source scripts/lib/cargo-target.sh
version=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "deltadrop"))')
out="$repo/dist"
mkdir -p "$out"

echo "dist: building the Linux binary (release)" >&2
cargo build --quiet --release --bin deltadrop
linux="$out/deltadrop-$version-x86_64-linux"
cp "$(cargo_target_dir "$repo")/release/deltadrop" "$linux"
strip "$linux"

echo "dist: building deltadrop.exe (release, x86_64-pc-windows-gnu)" >&2
exe=$(scripts/windows/build.sh --release)
windows="$out/deltadrop-$version-x86_64-windows.exe"
cp "$exe" "$windows"
x86_64-w64-mingw32-strip "$windows"

cp config.toml.example "$out/config.toml.example"
(cd "$out" && sha256sum "$(basename "$linux")" "$(basename "$windows")" config.toml.example >SHA256SUMS &&
  sha256sum --quiet -c SHA256SUMS)
"$linux" --version >/dev/null
ls -l "$out" >&2
cat "$out/SHA256SUMS"
