#!/usr/bin/env bash
# Characters against subwords at the same compute (the README's table in
# "Train on your own text"): tiny-shakespeare tokenized as char, BPE 512 and
# BPE 2048; the CPU time of a baby training step on each, measured in
# interleaved rounds (user + system of `train --threads 1`, T(long) - T(short),
# median over rounds; CPU time rather than wall time, so a shared machine
# gives the same steps); then each trained for the steps that cost what
# CHAR_STEPS cost the char model, and sampled.
# Usage: bench/tokenizer_compute.sh ATTNLAB_BINARY WORK_DIR [CHAR_STEPS] [ROUNDS]
#   (defaults 2000 and 3: about 6 CPU-minutes of training and 3 of timing)
set -euo pipefail
attnlab=$(realpath "$1")
work=$2
char_steps=${3:-2000}
rounds=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/../data/tinyshakespeare.txt"
mkdir -p "$work"
cd "$work"
kinds=(char bpe512 bpe2048)

[ -d char ] || "$attnlab" tokenize --data "$corpus" --out char --quiet
[ -d bpe512 ] || "$attnlab" tokenize --data "$corpus" --tokenizer bpe --vocab 512 --out bpe512 --quiet
[ -d bpe2048 ] || "$attnlab" tokenize --data "$corpus" --tokenizer bpe --vocab 2048 --out bpe2048 --quiet

cpu_seconds() {  # CPU seconds of one command (user + system)
  /usr/bin/time -f "%U %S" -o cpu.txt "$@" >/dev/null 2>&1
  awk '{print $1 + $2}' cpu.txt
}
short=20
long=$((short + 200))
: > step_ms.txt
for ((r = 1; r <= rounds; ++r)); do
  for d in "${kinds[@]}"; do
    t=()
    for n in $short $long; do
      rm -rf timing
      t+=("$(cpu_seconds "$attnlab" train --preset baby --data "$d" --steps "$n" --eval-every 0 \
        --eval-batches 2 --threads 1 --out timing --quiet)")
    done
    echo "$d $(awk -v a="${t[0]}" -v b="${t[1]}" -v n=$((long - short)) 'BEGIN {print 1000 * (b - a) / n}')" >> step_ms.txt
  done
done
median_ms() { grep "^$1 " step_ms.txt | awk '{print $2}' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo "| tokenizer | ms/step (CPU) | steps | CPU time | val loss | val bits/byte | train tokens/s | train chars/s | sample tokens/s | sample chars/s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
char_ms=$(median_ms char)
for d in "${kinds[@]}"; do
  ms=$(median_ms "$d")
  steps=$(awk -v c="$char_ms" -v m="$ms" -v s="$char_steps" 'BEGIN {printf "%d", s * c / m + 0.5}')
  rm -rf "run_$d"
  /usr/bin/time -f "%U %S" -o cpu.txt "$attnlab" train --preset baby --data "$d" --steps "$steps" \
    --threads 1 --out "run_$d" > "train_$d.log" 2>&1
  cpu=$(awk '{print $1 + $2}' cpu.txt)
  # The run's last line: "done: S steps in T, val loss L (B bits/byte), best ..."
  loss=$(grep '^done:' "train_$d.log" | grep -o 'val loss [0-9.]*' | cut -d' ' -f3)
  bpb=$(grep '^done:' "train_$d.log" | grep -o '[0-9.]* bits/byte' | cut -d' ' -f1)
  bytes_per_token=$(python3 -c "import json; s = json.load(open('$d/dataset.json'))['splits']['train']; print(s['bytes'] / s['tokens'])")
  best=""
  for _ in 1 2 3; do
    c=$(cpu_seconds "$attnlab" sample --checkpoint "run_$d" --tokens 4000 --threads 1 --seed 7)
    best=$(awk -v a="$c" -v b="${best:-1e9}" 'BEGIN {print (a < b) ? a : b}')
  done
  "$attnlab" sample --checkpoint "run_$d" --tokens 4000 --threads 1 --seed 7 2>/dev/null > sample.txt
  chars=$(python3 -c "print(len(open('sample.txt', encoding='utf-8').read()))")
  awk -v d="$d" -v ms="$ms" -v steps="$steps" -v cpu="$cpu" -v loss="$loss" -v bpb="$bpb" \
    -v bpt="$bytes_per_token" -v sc="$best" -v chars="$chars" 'BEGIN {
      tok = steps * 768 / cpu
      printf "| %s | %.1f | %d | %.0f s | %s | %s | %.1fk | %.1fk | %.1fk | %.1fk |\n",
        d, ms, steps, cpu, loss, bpb, tok / 1000, tok * bpt / 1000, 4000 / sc / 1000, chars / sc / 1000
    }'
done
