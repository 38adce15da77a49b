#!/usr/bin/env bash
# Installs the Debian packages attnlab needs to build and test, and nothing
# when they are all present. Idempotent; quiet unless it has work to do.
set -euo pipefail

packages=(
  g++ cmake make git pkg-config
  libopenblas-dev   # matmul (cblas_sgemm / cblas_dgemm)
  libhwy-dev        # Google Highway: portable SIMD with run-time dispatch
  doctest-dev       # unit tests
  libcli11-dev      # the attnlab command line
  nlohmann-json3-dev  # configs and safetensors headers
  libfmt-dev        # formatting of messages and tables
  libsentencepiece-dev  # BPE and unigram tokenizers (attnlab tokenize)
  libopenmpi-dev openmpi-bin  # data-parallel training under mpirun (optional to build)
  doxygen           # the API reference: the `docs` build target
)
# Extra groups, asked for by name: `install-deps.sh bench` adds PyTorch for
# bench/compare_pytorch.py; the library itself never needs it.
for group in "$@"; do
  case "$group" in
    bench) packages+=(python3 python3-numpy python3-torch) ;;
    fuzz) packages+=(clang libclang-rt-14-dev) ;;
    *) echo "install-deps.sh: unknown group '$group' (known: bench, fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps.sh: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
