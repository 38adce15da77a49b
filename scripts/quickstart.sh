#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what is missing, builds
# the release preset, and runs the library's demo on the bundled corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
./build/release/examples/autograd_tour
