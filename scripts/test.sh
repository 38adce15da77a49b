#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing,
# builds the release and asan presets, and runs every test through ctest;
# then fuzzes every reader of outside data for a short while (scripts/fuzz.sh,
# ATTNLAB_FUZZ_SECONDS per target, default 30; 0 only replays the corpora).
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
for preset in release asan; do
  echo "== $preset: build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== $preset: test"
  ctest --preset "$preset" -j "$jobs"
done
echo "== fuzz: ${ATTNLAB_FUZZ_SECONDS:-30} s per target"
./scripts/fuzz.sh "${ATTNLAB_FUZZ_SECONDS:-30}"
