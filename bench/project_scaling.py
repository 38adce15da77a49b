#!/usr/bin/env python3
"""Data-parallel efficiency on paper (bench/README.md, "Several processes").

A step of data-parallel training on N ranks (train/data_parallel.hpp) is
compute (forward + backward of each rank's micro-batches, measured on this
machine) followed by communication that does not overlap it:

  reduce-scatter of the gradients + all-gather of the updated weights,
  each moving (N-1)/N * 4P bytes through every rank's link (ring-optimal;
  our all-to-all of one subtree per rank moves the same bytes when N is a
  power of two), each with N-1 message latencies:

  t_comm = 2 * (N-1)/N * 4P / bandwidth + 2 * (N-1) * latency

Efficiency = t_compute / (t_compute + t_comm), with each rank doing the same
work per step whatever N (weak scaling: --accum grows with N, one micro-batch
per rank). The compute of a config 10x larger is taken as 10x (6 * P * tokens
FLOPs per token dominate at these sizes).

  python3 bench/project_scaling.py --params 10671744 --compute-ms 2900
"""
import argparse


def efficiency(params, compute_s, ranks, gbit_per_s, latency_s):
    bandwidth = gbit_per_s * 1e9 / 8  # bytes/s
    volume = 2 * (ranks - 1) / ranks * 4 * params
    comm = volume / bandwidth + 2 * (ranks - 1) * latency_s
    return compute_s / (compute_s + comm), comm


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--params", type=float, required=True, help="P, parameters of the model")
    p.add_argument("--compute-ms", type=float, required=True,
                   help="compute time of one rank's step (its micro-batches), measured")
    p.add_argument("--name", default="model")
    p.add_argument("--ranks", default="2,4,8,16,32,64")
    args = p.parse_args()
    links = [(10, 30e-6, "10 Gb/s (TCP, 30 us)"), (100, 5e-6, "100 Gb/s (RDMA, 5 us)")]
    print(f"| {args.name} (P = {args.params / 1e6:.1f} M, compute {args.compute_ms:.0f} ms/step) | "
          + " | ".join(f"N = {n}" for n in args.ranks.split(",")) + " |")
    print("|---|" + "---|" * len(args.ranks.split(",")))
    for gbit, latency, label in links:
        cells = []
        for n in (int(x) for x in args.ranks.split(",")):
            eff, comm = efficiency(args.params, args.compute_ms / 1e3, n, gbit, latency)
            cells.append(f"{100 * eff:.0f}% ({1e3 * comm:.0f} ms)")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
