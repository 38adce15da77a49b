#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs what is missing, builds
# the release preset, trains the `baby` model on the bundled tiny-shakespeare
# (nanoGPT's baby CPU recipe: 2000 steps), then samples from it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
run="runs/baby-$(date +%Y%m%d-%H%M%S)"
./build/release/attnlab train --preset baby --out "$run"
./build/release/attnlab sample --checkpoint "$run" --prompt "ROMEO:" --tokens 300
