#!/usr/bin/env python3
"""Generates tests/data/reference: tiny checkpoints and batches covering every
variant of docs/MODEL-SPEC.md, with the outputs of `inspect` computed in float64 by
the independent PyTorch implementation in bench/reference_model.py.

    /usr/bin/python3 bench/make_reference_data.py [--out tests/data/reference] [--no-gradcheck]

Each case directory holds
    model.safetensors     F32 weights, the config JSON under __metadata__["config"]
    batch.safetensors     I64 inputs and targets [B, T]
    expected.safetensors  F64 logits [B,T,V], loss, ce, aux [], grad.<name> per parameter

The C++ test tests/cli/inspect_reference_test.cpp runs `attnlab inspect` on
every case and compares. Everything is drawn from fixed seeds, so running this
again rewrites the same files (on the same numpy/torch).

A case is accepted only when its numbers are robust, so that a float32
implementation must agree with the float64 reference: no token's top-k routing
is within 1e-3 of switching (except for the deliberate exact ties of the
`moe_tie` case), no relu input is within 1e-4 of the kink, and the float32 and
float64 reference choose the same experts. When a draw fails a check (or the
case's own requirement, such as an expert that no token chooses), the next
seed is tried.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_model as ref  # noqa: E402

# name -> (config, B, T, requirement). Sizes are tiny on purpose: the files
# are committed test data. Comments say what each case is there to cover.
CASES = {
    # mha, swiglu with the default width round_up(8·D/3, 8) = 24, 2 layers,
    # untied; a small rope_theta so the slow RoPE pair turns visibly.
    "mha_swiglu": (
        dict(vocab_size=13, d_model=8, n_layers=2, n_heads=2, rope_theta=100.0),
        2, 4, None,
    ),
    # head_dim given (5) != D/H (4), and odd: r = 2·floor(2.5) = 4 even at
    # rope_fraction 1, so the last channel is not rotated; relu FFN with
    # biases; tied embeddings; a large norm_eps (so that it shows) and a
    # non-default max_seq_len.
    "mha_head_dim_relu_tied": (
        dict(vocab_size=11, d_model=12, n_layers=1, n_heads=3, head_dim=5, ffn="relu",
             ffn_hidden=16, tie_embeddings=True, norm_eps=1e-2, max_seq_len=8),
        2, 5, None,
    ),
    # gqa: 4 query heads over 2 kv heads (head h reads kv head h // 2).
    "gqa": (
        dict(vocab_size=17, d_model=16, n_layers=1, n_heads=4, attention="gqa",
             n_kv_heads=2, ffn_hidden=16, rope_theta=500.0),
        2, 4, None,
    ),
    # gqa with partial RoPE: dh = 8 (given; D/H = 2), rope_fraction 0.5 ->
    # r = 4, and the frequencies use r (theta^(-2j/4)), not dh; relu at its
    # default width 4·D.
    "gqa_rope_half": (
        dict(vocab_size=13, d_model=8, n_layers=1, n_heads=4, attention="gqa",
             n_kv_heads=2, head_dim=8, rope_fraction=0.5, ffn="relu", rope_theta=50.0),
        2, 5, None,
    ),
    # mqa (n_kv_heads defaults to 1) over 2 query heads; rope_fraction 0.75
    # of dh = 4 -> r = 2·floor(1.5) = 2; tied.
    "mqa_rope_frac_tied": (
        dict(vocab_size=11, d_model=8, n_layers=2, n_heads=2, attention="mqa",
             rope_fraction=0.75, ffn_hidden=8, tie_embeddings=True, rope_theta=100.0),
        2, 4, None,
    ),
    # mla: decoupled RoPE (dr = 4), q and kv latents of different widths.
    "mla": (
        dict(vocab_size=13, d_model=12, n_layers=2, n_heads=2, attention="mla",
             q_lora_rank=6, kv_lora_rank=4, rope_head_dim=4, ffn_hidden=8,
             rope_theta=100.0),
        2, 5, None,
    ),
    # mla with a MoE: top_k 2 of 3, one shared expert, relu experts, tied.
    "mla_moe": (
        dict(vocab_size=11, d_model=12, n_layers=1, n_heads=3, attention="mla",
             q_lora_rank=6, kv_lora_rank=4, rope_head_dim=2, ffn="relu", ffn_hidden=8,
             n_experts=3, top_k=2, n_shared_experts=1, aux_loss_coef=0.1,
             tie_embeddings=True),
        2, 4, "all_experts_used",
    ),
    # Switch routing (top_k 1: gate = full-softmax probability), 2 layers,
    # every expert used.
    "moe_top1": (
        dict(vocab_size=11, d_model=8, n_layers=2, n_heads=2, n_experts=3, top_k=1,
             ffn_hidden=8, aux_loss_coef=0.1),
        2, 4, "all_experts_used",
    ),
    # top_k 1 on a short batch where some expert gets no token: its gradient
    # must be exactly zero. A large aux_loss_coef makes the router gradient
    # lean on the aux loss.
    "moe_top1_unused_expert": (
        dict(vocab_size=11, d_model=8, n_layers=1, n_heads=2, n_experts=4, top_k=1,
             ffn_hidden=8, aux_loss_coef=0.5),
        2, 3, "some_expert_unused",
    ),
    # Mixtral routing (top_k 2: softmax over the chosen logits) with 2 shared
    # experts, relu experts.
    "moe_top2_shared": (
        dict(vocab_size=13, d_model=8, n_layers=1, n_heads=2, n_experts=4, top_k=2,
             n_shared_experts=2, ffn="relu", ffn_hidden=8, aux_loss_coef=0.1),
        2, 4, "all_experts_used",
    ),
    # Exact ties: router rows 1 and 2 are identical, so their logits are equal
    # in any arithmetic; where the tie straddles the top-2 boundary, expert 1
    # (the lower index) must win.
    "moe_tie": (
        dict(vocab_size=11, d_model=8, n_layers=1, n_heads=2, attention="gqa", n_kv_heads=1,
             n_experts=4, top_k=2, ffn_hidden=8, aux_loss_coef=0.1),
        2, 4, "tie_straddles",
    ),
}

TIED_ROWS = {"moe_tie": (1, 2)}  # case -> router rows made identical (in every layer)


def draw_parameters(cfg: ref.Config, rng: np.random.Generator, case: str) -> dict:
    """Random weights, stored as float32: large enough that no gradient is tiny."""
    params = {}
    for name, shape in ref.parameter_shapes(cfg):
        if name.endswith("norm.weight"):
            w = 1.0 + 0.2 * rng.standard_normal(shape)  # RMSNorm gains near 1
        elif name.endswith(".bias"):
            w = 0.1 * rng.standard_normal(shape)
        elif name == "tok_emb.weight":
            w = 0.5 * rng.standard_normal(shape)
        elif name.endswith("router.weight"):
            w = 0.5 * rng.standard_normal(shape)
            if case in TIED_ROWS:
                a, b = TIED_ROWS[case]
                w[b] = w[a]
        else:
            w = 0.35 * rng.standard_normal(shape)
        params[name] = torch.from_numpy(np.asarray(w, dtype=np.float32))
    return params


def routing_problems(cfg: ref.Config, trace: dict, case: str) -> list[str]:
    """Why this draw's routing is not robust (empty when it is)."""
    problems = []
    tied = TIED_ROWS.get(case)
    straddles = False
    for layer, (logits, chosen) in enumerate(trace.get("router", [])):
        N, E = logits.shape
        counts = torch.bincount(chosen.reshape(-1), minlength=E)
        for n in range(N):
            picked = set(chosen[n].tolist())
            for c in picked:
                for u in set(range(E)) - picked:
                    gap = (logits[n, c] - logits[n, u]).item()
                    if tied and {c, u} == set(tied):
                        if gap != 0.0:
                            problems.append(f"layer {layer}: tied logits differ by {gap}")
                        straddles = True
                    elif gap < 1e-3:
                        problems.append(f"layer {layer} token {n}: routing margin {gap:.2e}")
        if case_requirement(case) == "all_experts_used" and (counts == 0).any():
            problems.append(f"layer {layer}: an expert is unused")
    if case_requirement(case) == "some_expert_unused":
        if all((torch.bincount(c.reshape(-1), minlength=cfg.n_experts) > 0).all()
               for _, c in trace["router"]):
            problems.append("every expert is used")
    if case_requirement(case) == "tie_straddles" and not straddles:
        problems.append("no tie at the top-k boundary")
    if trace.get("relu_margin", np.inf) < 1e-4:
        problems.append(f"relu input {trace['relu_margin']:.2e} from the kink")
    return problems


def case_requirement(case: str):
    return CASES[case][3]


def make_case(case: str, out_dir: str, gradcheck: bool) -> None:
    config, B, T, _ = CASES[case]
    cfg = ref.Config.from_json(config)
    base_seed = zlib.crc32(case.encode()) % 1_000_000 * 100  # fixed per case name
    for attempt in range(100):
        rng = np.random.default_rng(base_seed + attempt)
        params = draw_parameters(cfg, rng, case)
        inputs = torch.from_numpy(rng.integers(0, cfg.vocab_size, size=(B, T)))
        targets = torch.from_numpy(rng.integers(0, cfg.vocab_size, size=(B, T)))
        trace64, trace32 = {}, {}
        expected = ref.inspect(cfg, params, inputs, targets, torch.float64, trace64)
        ref.inspect(cfg, params, inputs, targets, torch.float32, trace32)
        problems = routing_problems(cfg, trace64, case)
        for (_, c64), (_, c32) in zip(trace64.get("router", []), trace32.get("router", [])):
            if not torch.equal(c64, c32):
                problems.append("float32 and float64 choose different experts")
        if not problems:
            break
        print(f"  {case}: seed {base_seed + attempt} rejected: {problems[0]}")
    else:
        raise RuntimeError(f"{case}: no acceptable draw in 100 seeds")

    if gradcheck:  # the reference's own gradients against finite differences
        prepare = None
        if case in TIED_ROWS:
            # Perturbing one of two tied router rows alone breaks the tie and
            # jumps the routing; so the check reads row b as a copy of row a
            # (the analytic gradient of row a is then the sum of both rows').
            a, b = TIED_ROWS[case]

            def prepare(P):
                P = dict(P)
                for name in P:
                    if name.endswith("router.weight"):
                        w = P[name]
                        P[name] = torch.cat([w[:b], w[a : a + 1], w[b + 1 :]])
                return P

        ok = ref.gradcheck(cfg, params, inputs, targets, prepare)
        assert ok, f"{case}: gradcheck failed"

    d = os.path.join(out_dir, case)
    os.makedirs(d, exist_ok=True)
    ref.write_safetensors(
        os.path.join(d, "model.safetensors"),
        [(n, params[n].numpy(), "F32") for n, _ in ref.parameter_shapes(cfg)],
        {"config": json.dumps(config, sort_keys=True)},
    )
    ref.write_safetensors(
        os.path.join(d, "batch.safetensors"),
        [("inputs", inputs.numpy(), "I64"), ("targets", targets.numpy(), "I64")],
    )
    ref.write_outputs(
        os.path.join(d, "expected.safetensors"), expected, "f64",
        {"generator": "bench/make_reference_data.py", "case": case},
    )
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    unused = [
        f"layer {i} expert {e}"
        for i, (_, c) in enumerate(trace64.get("router", []))
        for e in range(cfg.n_experts)
        if not (c == e).any()
    ]
    print(
        f"{case}: seed {base_seed + attempt}, loss {expected['loss'].item():.6f} "
        f"(ce {expected['ce'].item():.6f}, aux {expected['aux'].item():.6f}), "
        f"{len(expected) - 4} grads, {size} bytes"
        + (f"; unused: {', '.join(unused)}" if unused else "")
        + (", gradcheck ok" if gradcheck else "")
    )


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(root, "tests", "data", "reference"))
    parser.add_argument("--no-gradcheck", action="store_true",
                        help="skip torch.autograd.gradcheck of each case")
    parser.add_argument("cases", nargs="*", help="only these cases (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for case in args.cases or CASES:
        make_case(case, args.out, not args.no_gradcheck)
    total = sum(
        os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(args.out) for f in fs
    )
    print(f"total {total} bytes in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
