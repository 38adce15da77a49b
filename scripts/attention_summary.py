#!/usr/bin/env python3
"""What each head of a model attends to, from `attnlab attention`'s JSON.

    ./build/release/attnlab attention --checkpoint RUN/best.safetensors \
        --prompt "ROMEO: ..." --out MAPS
    scripts/attention_summary.py MAPS/attention.json

For every layer and head, the mean over the prompt's queries t = 1 .. T-1
(query 0 can only look at itself) of the probability it puts on
    self    key t                  prev    key t-1        prev2   key t-2
    first   key 0                  line    the first token of t's line
    space   the last space or newline before t (a word's boundary)
    same    earlier keys holding the same token as t
and the mean entropy of its rows in bits (0: all on one key). Standard
library only (docs/guide/9-reading-attention-maps.md reads its output).
"""
import json
import math
import sys


def line_start(tokens, t):
    """The first position of the line that holds position t."""
    s = t
    while s > 0 and tokens[s - 1] != "\n":
        s -= 1
    return s


def last_space(tokens, t):
    """The last position before t holding a space or a newline, or None."""
    s = t - 1
    while s >= 0 and tokens[s] not in (" ", "\n"):
        s -= 1
    return s if s >= 0 else None


def summarise(maps):
    tokens = maps["tokens"]
    T = len(tokens)
    rows = []
    for l, layer in enumerate(maps["layers"]):
        for h, head in enumerate(layer["heads"]):
            sums = dict(self=0.0, prev=0.0, prev2=0.0, first=0.0, line=0.0, space=0.0, same=0.0,
                        bits=0.0)
            for t in range(1, T):
                p = head[t]  # query t over keys 0 .. t
                sums["self"] += p[t]
                sums["prev"] += p[t - 1]
                sums["prev2"] += p[t - 2] if t >= 2 else 0.0
                sums["first"] += p[0]
                sums["line"] += p[line_start(tokens, t)]
                space = last_space(tokens, t)
                sums["space"] += p[space] if space is not None else 0.0
                sums["same"] += sum(p[j] for j in range(t) if tokens[j] == tokens[t])
                sums["bits"] -= sum(x * math.log2(x) for x in p if x > 0)
            rows.append((l, h, {k: v / max(T - 1, 1) for k, v in sums.items()}))
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: attention_summary.py DIR/attention.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        maps = json.load(f)
    print(f"{len(maps['tokens'])} tokens; mean probability over queries 1..T-1")
    columns = ["self", "prev", "prev2", "first", "line", "space", "same", "bits"]
    print("layer head " + " ".join(f"{c:>6}" for c in columns))
    for l, h, m in summarise(maps):
        print(f"{l:5d} {h:4d} " + " ".join(f"{m[c]:6.2f}" for c in columns))
    # What a head that spreads evenly over keys 0..t would score on one key.
    T = len(maps["tokens"])
    even = sum(1 / (t + 1) for t in range(1, T)) / max(T - 1, 1)
    print(f"(a head spread evenly over the keys puts {even:.2f} on any one of them)")


if __name__ == "__main__":
    main()
