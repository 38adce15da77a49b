#!/usr/bin/env python3
"""attnlab against PyTorch, side by side, on the same checkpoints and batches.

For each preset (baby, small) and each attention variant (mha, gqa, mqa, mla),
dense and MoE, this script

  1. writes a checkpoint (spec initialisation, seed fixed) and a batch of
     token ids, in safetensors, with bench/reference_model.py's writer;
  2. checks that attnlab (bench_train_step) and PyTorch (bench/reference_model.py,
     float32) compute the same loss on that batch: the same work is timed;
  3. times, interleaved in one run, a whole training step of each (forward,
     backward, global-norm clip, AdamW, zero_grad; median over --steps after
     warm-up), decode tokens/s at batch 1 after a 32-token prefill (each with
     its own KV cache), and the peak resident memory of each process.

Each side gets its best thread setting: PyTorch tries intra-op threads 1 and 2
with OpenBLAS 1 and 2, attnlab threads 1 and 2 (a short probe on the preset's
mha row; the best is used for every row of the preset). It also measures the
machine's f32 FMA peak and gives attnlab's MFU (model FLOP/s of a training step
over that peak) for every row.

OPENBLAS_CORETYPE: some environments force an older OpenBLAS kernel through
this variable. With --coretype VALUE, every row is timed twice, once with the
environment as it is and once with OPENBLAS_CORETYPE=VALUE (or unset, when the
environment sets it), for both sides.

Run with the system interpreter (Debian's python3-torch, python3-numpy):

  /usr/bin/python3 bench/compare_pytorch.py --bench build/perf/bench/bench_train_step \
      --out bench/results.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# ---------------------------------------------------------------------------
# Configs: the presets of models/config.cpp (preset_config), vocab 65.
# ---------------------------------------------------------------------------

PRESETS = {"baby": (128, 4, 4, 64), "small": (384, 6, 6, 256)}  # D, L, H, max_seq_len
VARIANTS = ["mha", "gqa", "mqa", "mla"]
BATCH = 12  # the default --batch-size of attnlab train
VOCAB = 65


def make_config(preset: str, attention: str, experts: int) -> dict:
    d, layers, heads, seq = PRESETS[preset]
    c = {"vocab_size": VOCAB, "d_model": d, "n_layers": layers, "n_heads": heads,
         "max_seq_len": seq, "ffn": "swiglu", "rope_fraction": 1.0, "attention": attention}
    dh = d // heads
    if attention == "gqa":
        c["n_kv_heads"] = heads // 2
    if attention == "mqa":
        c["n_kv_heads"] = 1
    if attention == "mla":
        c.update(q_lora_rank=d // 2, kv_lora_rank=d // 4, rope_head_dim=dh // 2)
    if experts:
        c.update(n_experts=experts, top_k=2)
    return c


def write_case(dirname: str, preset: str, attention: str, experts: int) -> tuple[str, str]:
    import numpy as np
    import reference_model as rm

    cfg_json = make_config(preset, attention, experts)
    cfg = rm.Config.from_json(cfg_json)
    rng = np.random.default_rng(1234)
    tensors = []
    out_std = 0.02 / math.sqrt(2 * cfg.n_layers)
    for name, shape in rm.parameter_shapes(cfg):
        if name.endswith("norm.weight"):
            arr = np.ones(shape, np.float32)
        elif name.endswith(".bias"):
            arr = np.zeros(shape, np.float32)
        else:
            std = out_std if ("wo." in name or "w_down." in name) else 0.02
            arr = rng.normal(0.0, std, size=shape).astype(np.float32)
        tensors.append((name, arr, "F32"))
    tag = f"{preset}-{attention}-{'moe' if experts else 'dense'}"
    ck = os.path.join(dirname, tag + ".safetensors")
    rm.write_safetensors(ck, tensors, {"config": json.dumps(cfg_json)})
    T = cfg.max_seq_len
    data = rng.integers(0, VOCAB, size=(BATCH, T + 1))
    batch = os.path.join(dirname, tag + ".batch.safetensors")
    rm.write_safetensors(batch, [("inputs", data[:, :-1].astype(np.int64), "I64"),
                                 ("targets", data[:, 1:].astype(np.int64), "I64")])
    return ck, batch


# ---------------------------------------------------------------------------
# FLOPs of a training step (for MFU): 6 × (weights each token multiplies) ×
# tokens, plus attention's q·kᵀ and p·v over the causal half of the T×T scores
# (forward 2 flops per multiply-add, backward twice the forward).
# ---------------------------------------------------------------------------


def train_step_flops(c: dict, tokens: int, seq_len: int) -> float:
    d, layers, heads = c["d_model"], c["n_layers"], c["n_heads"]
    dh = d // heads
    f = ((8 * d // 3) + 7) // 8 * 8
    ffn = 3 * d * f
    if c.get("n_experts"):
        ffn = c["top_k"] * ffn + c["n_experts"] * d  # the chosen experts and the router
    if c["attention"] == "mla":
        dq, dc, dr = c["q_lora_rank"], c["kv_lora_rank"], c["rope_head_dim"]
        attn = d * dq + dq * heads * (dh + dr) + d * dc + 2 * dc * heads * dh + d * dr + heads * dh * d
        qk, pv = dh + dr, dh
    else:
        hkv = {"mha": heads, "gqa": heads // 2, "mqa": 1}[c["attention"]]
        attn = 2 * d * heads * dh + 2 * d * hkv * dh
        qk, pv = dh, dh
    weights = layers * (attn + ffn) + d * VOCAB  # + the output head
    scores = (seq_len * (seq_len + 1) // 2) * (tokens // seq_len)  # causal pairs
    attention = layers * heads * scores * 2 * (qk + pv)
    return 6.0 * weights * tokens + 3.0 * attention


# ---------------------------------------------------------------------------
# The PyTorch side: a worker process per measurement, so that OpenBLAS's thread
# count (read once, at load) can differ between them.
# ---------------------------------------------------------------------------


def torch_decode_tok_s(cfg, P, inputs, n_new: int, prefill: int = 32) -> float:
    """Tokens/s of a KV-cached decoder at batch 1: prefill `prefill` tokens,
    then decode one token at a time, attending to the cache (no recompute)."""
    import torch
    import torch.nn.functional as F
    import reference_model as rm

    H, dh = cfg.n_heads, cfg.head_dim
    mla = cfg.attention == "mla"
    maxT = cfg.max_seq_len
    r = cfg.rope_head_dim if mla else cfg.rope_dims

    def rope_at(x, rdims, pos0):  # x [1, T, heads, d], positions pos0 …
        if rdims == 0:
            return x
        T = x.shape[1]
        j = torch.arange(rdims // 2, dtype=torch.float64)
        freqs = cfg.rope_theta ** (-2.0 * j / rdims)
        pos = torch.arange(pos0, pos0 + T, dtype=torch.float64)
        ang = pos[:, None] * freqs[None, :]
        cos = torch.cos(ang).to(x.dtype)[None, :, None, :]
        sin = torch.sin(ang).to(x.dtype)[None, :, None, :]
        rot = x[..., :rdims].reshape(*x.shape[:-1], rdims // 2, 2)
        x0, x1 = rot[..., 0], rot[..., 1]
        y = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
        return torch.cat([y.reshape(*x.shape[:-1], rdims), x[..., rdims:]], dim=-1)

    hkv = H if mla else cfg.n_kv_heads
    dk = dh + (cfg.rope_head_dim if mla else 0)
    kc = [torch.zeros(1, hkv, maxT, dk) for _ in range(cfg.n_layers)]
    vc = [torch.zeros(1, hkv, maxT, dh) for _ in range(cfg.n_layers)]

    def attend(i, x, pos):  # x [1, T, D]
        a = f"layers.{i}.attn."
        T = x.shape[1]
        lin = rm.linear
        if mla:
            c_q = lin(x, P[a + "w_dq.weight"])
            q = torch.cat([lin(c_q, P[a + "w_uq.weight"]).reshape(1, T, H, dh),
                           rope_at(lin(c_q, P[a + "w_qr.weight"]).reshape(1, T, H, r), r, pos)], -1)
            c_kv = lin(x, P[a + "w_dkv.weight"])
            k_r = rope_at(lin(x, P[a + "w_kr.weight"]).reshape(1, T, 1, r), r, pos)
            k = torch.cat([lin(c_kv, P[a + "w_uk.weight"]).reshape(1, T, H, dh),
                           k_r.expand(1, T, H, r)], -1)
            v = lin(c_kv, P[a + "w_uv.weight"]).reshape(1, T, H, dh)
            scale = 1.0 / math.sqrt(dh + r)
        else:
            q = rope_at(lin(x, P[a + "wq.weight"]).reshape(1, T, H, dh), r, pos)
            k = rope_at(lin(x, P[a + "wk.weight"]).reshape(1, T, hkv, dh), r, pos)
            v = lin(x, P[a + "wv.weight"]).reshape(1, T, hkv, dh)
            scale = 1.0 / math.sqrt(dh)
        kc[i][:, :, pos:pos + T] = k.transpose(1, 2)
        vc[i][:, :, pos:pos + T] = v.transpose(1, 2)
        K, V = kc[i][:, :, :pos + T], vc[i][:, :, :pos + T]
        if hkv != H:
            K = K.repeat_interleave(H // hkv, dim=1)
            V = V.repeat_interleave(H // hkv, dim=1)
        s = (q.transpose(1, 2) @ K.transpose(-1, -2)) * scale  # [1, H, T, pos+T]
        if T > 1:
            mask = torch.ones(T, pos + T, dtype=torch.bool).triu(pos + 1)
            s = s.masked_fill(mask, float("-inf"))
        o = (torch.softmax(s, -1) @ V).transpose(1, 2).reshape(1, T, H * dh)
        return lin(o, P[a + "wo.weight"])

    def run(ids, pos):
        x = P["tok_emb.weight"][ids]
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            x = x + attend(i, rm.rms_norm(x, P[p + "attn_norm.weight"], cfg.norm_eps), pos)
            h = rm.rms_norm(x, P[p + "ffn_norm.weight"], cfg.norm_eps)
            x = x + (rm.ffn(cfg, P, p + "ffn.", h) if cfg.n_experts == 0
                     else rm.moe(cfg, P, p + "moe.", h)[0])
        h = rm.rms_norm(x[:, -1:], P["norm.weight"], cfg.norm_eps)
        head = P["tok_emb.weight"] if cfg.tie_embeddings else P["lm_head.weight"]
        return rm.linear(h, head)

    n_new = min(n_new, maxT - prefill)
    rates = []
    with torch.no_grad():
        for _ in range(3):
            run(inputs[:1, :prefill], 0)
            t0 = time.perf_counter()
            for i in range(n_new):
                tok = inputs[:1, (prefill + 1 + i) % inputs.shape[1]].reshape(1, 1)
                run(tok, prefill + i)
            rates.append(n_new / (time.perf_counter() - t0))
    return statistics.median(rates)


def peak_rss_mb() -> float:
    """VmHWM, this program's own peak resident memory. Not ru_maxrss: a program
    started by fork and exec inherits its parent's (the driver, with torch
    loaded), which would hide attnlab's real figure."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    return 0.0


def torch_worker(args) -> None:
    import torch
    import reference_model as rm

    torch.set_num_threads(args.threads)
    cfg, P = rm.load_checkpoint(args.checkpoint, torch.float32)
    inputs, targets = rm.load_batch(args.batch, cfg.vocab_size)
    params = [P[n].requires_grad_(True) for n, _ in rm.parameter_shapes(cfg)]
    names = [n for n, _ in rm.parameter_shapes(cfg)]
    decay = [p for n, p in zip(names, params) if p.dim() >= 2]
    no_decay = [p for n, p in zip(names, params) if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.99), eps=1e-8, foreach=True)
    times, loss0 = [], None
    for s in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        out = rm.forward(cfg, P, inputs, targets)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if s == 0:
            loss0 = out["loss"].item()
        if s >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    rss = peak_rss_mb()
    for p in params:
        p.requires_grad_(False)
    tok_s = torch_decode_tok_s(cfg, P, inputs, args.decode) if args.decode > 0 else 0.0
    print(json.dumps({"loss0": loss0, "step_ms": statistics.median(times), "steps_ms": times,
                      "decode_tok_s": tok_s, "peak_rss_mb": rss}))


# ---------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------


def env_with(base: dict, coretype: str | None, **kv) -> dict:
    env = dict(base)
    if coretype is None:
        env.pop("OPENBLAS_CORETYPE", None)
    else:
        env["OPENBLAS_CORETYPE"] = coretype
    env.update({k: str(v) for k, v in kv.items()})
    return env


def run_json(cmd: list[str], env: dict) -> dict:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_run(ck, batch, intra, blas, steps, warmup, decode, env) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "_torch", "--checkpoint", ck,
           "--batch", batch, "--threads", str(intra), "--steps", str(steps),
           "--warmup", str(warmup), "--decode", str(decode)]
    return run_json(cmd, env_with(env, env.get("OPENBLAS_CORETYPE"),
                                  OPENBLAS_NUM_THREADS=blas, OMP_NUM_THREADS=intra))


def attnlab_run(bench, ck, batch, threads, steps, warmup, decode, env) -> dict:
    cmd = [bench, "--checkpoint", ck, "--batch", batch, "--threads", str(threads),
           "--steps", str(steps), "--warmup", str(warmup), "--decode", str(decode)]
    return run_json(cmd, env)


def load_line() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, help="path of the bench_train_step binary")
    ap.add_argument("--out", default="", help="write the table as Markdown here")
    ap.add_argument("--presets", default="baby,small")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--experts", default="0,4", help="0 = dense; E > 0 = MoE with E experts, top-2")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2,
                    help="interleaved repeats of each row (the median of medians is reported)")
    ap.add_argument("--decode", type=int, default=64, help="tokens decoded after the prefill")
    ap.add_argument("--decode-rows", default="bf16,int8",
                    help="weight formats of the quantized decode rows (bench_decode, beside "
                         "--bench; '' for none); f32 is always timed with them")
    ap.add_argument("--decode-batches", default="1,4,16",
                    help="batches of the batched decode rows")
    ap.add_argument("--coretype", default="",
                    help="also time every row with OPENBLAS_CORETYPE set to this (or unset, when "
                         "the environment sets it)")
    args = ap.parse_args()

    base_env = dict(os.environ)
    as_is = base_env.get("OPENBLAS_CORETYPE")
    envs = [("as is" if as_is is None else f"as is ({as_is})", base_env)]
    if args.coretype or as_is is not None:
        other = None if as_is is not None else args.coretype
        envs.append(("unset" if other is None else f"={other}", env_with(base_env, other)))

    # The peak of 2 cores: on a shared machine the 2-thread loop may lose a core
    # to other work, so twice the 1-thread figure is taken when it is higher.
    fma2 = run_json([args.bench, "--fma-peak", "--threads", "2"], base_env)["fma_gflops"]
    fma1 = run_json([args.bench, "--fma-peak", "--threads", "1"], base_env)["fma_gflops"]
    fma = max(fma2, 2 * fma1)
    print(f"f32 FMA peak of 2 cores: {fma:.0f} GFLOP/s (2 threads {fma2:.0f}, 1 thread {fma1:.0f}); "
          f"{load_line()}", flush=True)

    rows = []
    tmp = tempfile.mkdtemp(prefix="attnlab-compare-")
    for preset in args.presets.split(","):
        # Best thread settings, probed on the dense mha case.
        ck, batch = write_case(tmp, preset, "mha", 0)
        probe = max(5, args.steps // 3)
        best_t, best_a = None, None
        for intra in (1, 2):
            for blas in (1, 2):
                r = torch_run(ck, batch, intra, blas, probe, 3, 0, base_env)
                print(f"  probe {preset} torch intra={intra} openblas={blas}: "
                      f"{r['step_ms']:.1f} ms", flush=True)
                if best_t is None or r["step_ms"] < best_t[0]:
                    best_t = (r["step_ms"], intra, blas)
        for threads in (1, 2):
            r = attnlab_run(args.bench, ck, batch, threads, probe, 3, 0, base_env)
            print(f"  probe {preset} attnlab threads={threads}: {r['step_ms']:.1f} ms", flush=True)
            if best_a is None or r["step_ms"] < best_a[0]:
                best_a = (r["step_ms"], threads)
        _, intra, blas = best_t
        _, threads = best_a
        for experts in [int(e) for e in args.experts.split(",")]:
            for attention in args.variants.split(","):
                ck, batch = write_case(tmp, preset, attention, experts)
                cfg = make_config(preset, attention, experts)
                for env_name, env in envs:
                    ts, at = [], []
                    for _ in range(args.repeats):  # interleaved
                        ts.append(torch_run(ck, batch, intra, blas, args.steps, args.warmup,
                                            args.decode, env))
                        at.append(attnlab_run(args.bench, ck, batch, threads, args.steps,
                                              args.warmup, args.decode, env))
                    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
                    rel = abs(at[0]["loss0"] - ts[0]["loss0"]) / abs(ts[0]["loss0"])
                    if rel > 1e-4:
                        raise RuntimeError(f"{preset} {attention} E={experts}: losses differ: "
                                           f"attnlab {at[0]['loss0']} torch {ts[0]['loss0']}")
                    tokens = at[0]["tokens"]
                    flops = train_step_flops(cfg, tokens, PRESETS[preset][3])
                    row = {
                        "preset": preset, "attention": attention,
                        "ffn": f"MoE {experts}x top-2" if experts else "dense", "env": env_name,
                        "loss": at[0]["loss0"], "loss_rel": rel,
                        "a_ms": med(at, "step_ms"), "t_ms": med(ts, "step_ms"),
                        "a_tok": med(at, "decode_tok_s"), "t_tok": med(ts, "decode_tok_s"),
                        "bound_tok": med(at, "decode_ceiling_tok_s"),
                        "a_mb": med(at, "peak_rss_mb"), "t_mb": med(ts, "peak_rss_mb"),
                        "gflop": flops / 1e9,
                        "mfu": flops / (med(at, "step_ms") / 1e3) / (fma * 1e9),
                        "threads": f"attnlab {threads} / torch {intra}+blas {blas}",
                    }
                    rows.append(row)
                    print(format_row(row), flush=True)
    header, lines = table(rows)
    text = "\n".join([
        f"Machine: {machine_line()}; f32 FMA peak of 2 cores (measured, max of the 2-thread loop and twice the 1-thread one) {fma:.0f} GFLOP/s.",
        f"PyTorch {torch_version()}; {load_line()} at the end of the run.", "",
        header] + lines) + "\n"
    if args.decode_rows:
        text += decode_rows(args, rows, base_env)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


def decode_rows(args, rows: list[dict], env) -> str:
    """The quantized and batched decode rows: bench_decode (beside --bench) on
    each preset's mha model, formats and batches interleaved. PyTorch's side of
    every row is its f32 decoder at batch 1 (the dense mha row above)."""
    bench = os.path.join(os.path.dirname(os.path.abspath(args.bench)), "bench_decode")
    out = []
    for preset in args.presets.split(","):
        torch_tok = next((r["t_tok"] for r in rows if r["preset"] == preset
                          and r["attention"] == "mha" and r["ffn"] == "dense"), 0.0)
        result = subprocess.run(
            [bench, "--preset", preset, "--formats", "f32," + args.decode_rows,
             "--batches", args.decode_batches, "--tokens", str(max(args.decode, 16))],
            env=env, capture_output=True, text=True, check=True)
        out.append(f"\nDecode by weight format and batch, {preset} mha (bench_decode; PyTorch's "
                   f"side of every row is its f32 decoder at batch 1: {torch_tok:.0f} tok/s):\n")
        out.append(result.stdout)
    return "".join(out)


def format_row(r: dict) -> str:
    return (f"{r['preset']:5} {r['attention']:3} {r['ffn']:14} {r['env']:10} "
            f"train {r['a_ms']:7.1f} ms vs {r['t_ms']:7.1f} ms ({r['a_ms'] / r['t_ms']:.2f}x)  "
            f"decode {r['a_tok']:7.0f} vs {r['t_tok']:6.0f} tok/s "
            f"({r['a_tok'] / max(r['t_tok'], 1e-9):.1f}x)  "
            f"rss {r['a_mb']:.0f} vs {r['t_mb']:.0f} MB  MFU {100 * r['mfu']:.0f}%")


def table(rows: list[dict]) -> tuple[str, list[str]]:
    header = ("| preset | attention | FFN | OPENBLAS_CORETYPE | train step attnlab ms | PyTorch ms "
              "| ratio | decode attnlab tok/s | PyTorch tok/s | ratio | streaming bound tok/s "
              "| peak RSS attnlab MB "
              "| PyTorch MB | GFLOP/step | attnlab MFU | threads |\n"
              "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    lines = []
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['attention']} | {r['ffn']} | {r['env']} | {r['a_ms']:.1f} "
            f"| {r['t_ms']:.1f} | {r['a_ms'] / r['t_ms']:.2f} | {r['a_tok']:.0f} | {r['t_tok']:.0f} "
            f"| {r['a_tok'] / max(r['t_tok'], 1e-9):.1f} | {r['bound_tok']:.0f} "
            f"| {r['a_mb']:.0f} | {r['t_mb']:.0f} "
            f"| {r['gflop']:.2f} | {100 * r['mfu']:.0f}% | {r['threads']} |")
    return header, lines


def machine_line() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def torch_version() -> str:
    import torch
    return torch.__version__


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_torch":
        wp = argparse.ArgumentParser()
        wp.add_argument("_torch")
        for k in ("checkpoint", "batch"):
            wp.add_argument("--" + k, required=True)
        for k in ("threads", "steps", "warmup", "decode"):
            wp.add_argument("--" + k, type=int, required=True)
        torch_worker(wp.parse_args())
        sys.exit(0)
    sys.exit(main())
