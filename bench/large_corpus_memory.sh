#!/usr/bin/env bash
# The out-of-memory dataset check of issue #13, end to end (about 15 CPU
# minutes and 4 GB of disk for the default 2 GiB; too long for CI, which runs
# the same mechanism on a 48 MB shard in tests/train/prepared_dataset_test.cpp):
#   1. generate a corpus of GIB GiB (bench/make_large_corpus.py),
#   2. tokenize it (BPE 2048) and report the peak resident set and MB/s,
#   3. train the baby model on it and on tiny-shakespeare tokenized the same
#      way, STEPS steps each, and report both peak resident sets.
# Usage: bench/large_corpus_memory.sh ATTNLAB_BINARY WORK_DIR [GIB] [STEPS]
set -euo pipefail
attnlab=$(realpath "$1")
work=$2
gib=${3:-2}
steps=${4:-300}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
cd "$work"

peak_kib() { grep 'Maximum resident set size' "$1" | awk '{print $NF}'; }

[ -d corpus ] || python3 "$here/make_large_corpus.py" --gib "$gib" --out corpus
/usr/bin/time -v "$attnlab" tokenize --data corpus --tokenizer bpe --vocab 2048 --out big \
  --quiet 2> tokenize_big.time
/usr/bin/time -v "$attnlab" tokenize --data "$here/../data/tinyshakespeare.txt" --tokenizer bpe \
  --vocab 2048 --out small --quiet 2> tokenize_small.time
for d in big small; do
  /usr/bin/time -v "$attnlab" train --preset baby --data "$d" --steps "$steps" --threads 1 \
    --out "run_$d" --quiet 2> "train_$d.time"
done

bytes=$(du -sb corpus | cut -f1)
seconds=$(grep 'Elapsed (wall clock)' tokenize_big.time | awk '{print $NF}' |
  awk -F: '{s = 0; for (i = 1; i <= NF; ++i) s = s * 60 + $i; print s}')
echo "corpus: $(awk -v b="$bytes" 'BEGIN {printf "%.2f GiB", b / 2^30}')"
echo "tokenize: peak RSS $(($(peak_kib tokenize_big.time) / 1024)) MB," \
  "$(awk -v b="$bytes" -v s="$seconds" 'BEGIN {printf "%.2f MB/s", b / 1e6 / s}') wall"
big=$(peak_kib train_big.time)
small=$(peak_kib train_small.time)
echo "train baby: peak RSS $((big / 1024)) MB on the corpus, $((small / 1024)) MB on tiny-shakespeare" \
  "($(awk -v a="$big" -v b="$small" 'BEGIN {printf "%+.1f%%", 100 * (a - b) / b}'))"
