#!/usr/bin/env bash
# Fuzzes every reader of outside data with libFuzzer under ASan + UBSan
# (tests/fuzz/README.md): installs clang if it is missing, builds the `fuzz`
# preset, and runs each target for SECONDS (default 30), one after the other.
#
#   scripts/fuzz.sh                 # 30 s per target (what scripts/test.sh runs)
#   scripts/fuzz.sh 600             # a 10-minute campaign per target
#   scripts/fuzz.sh 600 safetensors # one target (names: tests/fuzz/<name>_fuzz.cpp)
#   scripts/fuzz.sh 0               # only replay the seeds and the saved corpus
#
# Each target starts from its seeds (tests/fuzz/corpus/<name>, read only) and
# from what earlier runs found (build/fuzz/corpus/<name>, where new inputs go).
# A finding (a crash, a sanitizer report, an exception other than
# attnlab::Error, a failed property, a timeout over 10 s, an allocation over
# 1 GiB or a resident set over 2 GiB) stops that target and is saved as
# build/fuzz/findings/<name>/crash-… (or timeout-…, oom-…); replay it with
#   build/fuzz/tests/fuzz/fuzz_<name> build/fuzz/findings/<name>/crash-…
# The script exits non-zero when any target had a finding.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac

./scripts/install-deps.sh fuzz
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

bin=build/fuzz/tests/fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in tests/fuzz/*_fuzz.cpp; do
    name=$(basename "$src" _fuzz.cpp)
    targets+=("$name")
  done
fi

failed=()
for name in "${targets[@]}"; do
  exe="$bin/fuzz_$name"
  [ -x "$exe" ] || { echo "fuzz.sh: no target '$name' (no $exe)" >&2; exit 2; }
  work=build/fuzz/corpus/$name
  findings=build/fuzz/findings/$name
  log=build/fuzz/logs/$name.log
  mkdir -p "$work" "$findings" "$(dirname "$log")"
  if [ "$seconds" -eq 0 ]; then
    limit=(-runs=0)
  else
    limit=(-max_total_time="$seconds")
  fi
  echo "== fuzz $name: ${seconds} s"
  status=0
  ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$exe" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 "${limit[@]}" \
      -print_final_stats=1 -artifact_prefix="$findings/" \
      "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1 || status=$?
  # The last status line: "#123456 DONE cov: 1976 ft: 5601 corp: 702/162Kb ... exec/s: 9907 ..."
  summary=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  runs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}' || true)
  echo "   ${runs:-?} executions; ${summary:-no status line}"
  if [ "$status" -ne 0 ]; then
    echo "   FINDING (exit status $status); the log is $log:" >&2
    grep -E 'ERROR|SUMMARY|fuzz:|runtime error|Test unit written|terminate' "$log" | head -n 20 >&2 || true
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]} (see build/fuzz/findings/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings (${#targets[@]} targets, ${seconds} s each)"
