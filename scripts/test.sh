#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing,
# builds the release and asan presets, and runs every test through ctest;
# builds the shared preset and the consumers against its install;
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
# Shared libraries (-DBUILD_SHARED_LIBS=ON): the libraries and the program
# only, installed, then the consumers of tests/consumer built against them.
echo "== shared: build, install, consumers"
cmake --preset shared >/dev/null
cmake --build --preset shared -j "$jobs"
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' build/shared/CMakeCache.txt)
for step in install cmake pkgconfig example; do
  cmake -DSTEP=$step -DSOURCE_DIR="$PWD" -DBUILD_DIR="$PWD/build/shared" \
        -DWORK_DIR="$PWD/build/shared/consumer" -DCXX="$cxx" -P tests/consumer/run_consumer.cmake
done
echo "== fuzz: ${ATTNLAB_FUZZ_SECONDS:-30} s per target"
./scripts/fuzz.sh "${ATTNLAB_FUZZ_SECONDS:-30}"
