#!/usr/bin/env python3
"""Writes a large generated corpus for the out-of-memory dataset test of
`attnlab tokenize` / `train --data DATA_DIR` (issue #13).

The corpus is a folder of .txt documents, each about --doc-mib MiB of lines
drawn at random (seeded) from a source text, so that it reads like the source
but never repeats it as a whole. Usage:

    python3 bench/make_large_corpus.py --gib 2 --out /tmp/corpus2g
"""
import argparse
import os
import random


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=os.path.join(here, "..", "data", "tinyshakespeare.txt"))
    parser.add_argument("--gib", type=float, default=2.0, help="total size in GiB")
    parser.add_argument("--doc-mib", type=float, default=1.0, help="size of one document in MiB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="a new folder")
    args = parser.parse_args()

    with open(args.source, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n")]
    os.makedirs(args.out, exist_ok=False)
    rng = random.Random(args.seed)
    total = int(args.gib * (1 << 30))
    doc_bytes = int(args.doc_mib * (1 << 20))
    written, doc = 0, 0
    while written < total:
        parts, size = [], 0
        while size < doc_bytes:
            start = rng.randrange(len(lines))
            run = lines[start : start + rng.randint(1, 40)]  # a passage, not single lines
            text = "\n".join(run) + "\n"
            parts.append(text)
            size += len(text.encode("utf-8"))
        data = "".join(parts).encode("utf-8")
        with open(os.path.join(args.out, f"doc{doc:05d}.txt"), "wb") as f:
            f.write(data)
        written += len(data)
        doc += 1
    print(f"{doc} documents, {written / (1 << 30):.2f} GiB in {args.out}")


if __name__ == "__main__":
    main()
