#!/usr/bin/env python3
"""An independent PyTorch implementation of docs/MODEL-SPEC.md.

This file is written from the model spec alone, not from attnlab's C++ code,
so that it can check attnlab: given the same checkpoint and batch, both must
compute the same logits, loss and gradients. It needs only the Python standard
library, torch and numpy (on Debian: python3-torch, python3-numpy; run it with
the system interpreter, /usr/bin/python3).

What is here, top to bottom:

  * safetensors reading and writing (F32, F64, BF16, I64, I32), by hand;
  * the model config: spec defaults and rules;
  * the model: RMSNorm, RoPE (interleaved pairs, partial rotation), attention
    (mha/gqa/mqa and mla), FFN (swiglu/relu), mixture of experts with the
    Switch load-balancing loss, cross-entropy;
  * checkpoint loading (weights + the `config` JSON in `__metadata__`);
  * `inspect`: for a checkpoint and a batch, the same outputs as
    `attnlab inspect` (logits, loss, ce, aux, grad.<name> of every parameter);
  * `compare`: per-tensor relative error between two such files;
  * `gradcheck`: torch.autograd.gradcheck of this implementation in float64.

Command line:

  reference_model.py inspect --checkpoint M.safetensors --batch B.safetensors \
                             --out OUT.safetensors [--dtype f32|f64]
  reference_model.py compare A.safetensors B.safetensors [--rtol 1e-4]
  reference_model.py gradcheck --checkpoint M.safetensors --batch B.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# safetensors
#
#   [8 bytes]  N, the header length, little-endian u64
#   [N bytes]  JSON: {"__metadata__": {str: str}, name: {"dtype", "shape",
#              "data_offsets": [begin, end]}, ...}
#   [rest]     the data buffer (offsets relative to its start), little-endian,
#              row-major
# ---------------------------------------------------------------------------

# dtype name -> numpy dtype of its storage (BF16 is stored as raw uint16).
_ST_DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
}


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """BF16 bits (uint16) -> float32: BF16 is the top half of an f32."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> BF16 bits (uint16), rounding to nearest even (NaN kept NaN)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(x)
    out[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a safetensors file: ({name: numpy array}, metadata).

    F32/F64/I64/I32 come back as those numpy dtypes, BF16 widened to float32.
    Every offset is checked against the file size.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    buffer = memoryview(data)[8 + n :]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        shape = [int(s) for s in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
        np_dtype = _ST_DTYPES[dtype]
        if not (0 <= begin <= end <= len(buffer)):
            raise ValueError(f"{path}: tensor {name} data out of bounds")
        if end - begin != math.prod(shape) * np_dtype.itemsize:
            raise ValueError(f"{path}: tensor {name} size does not match its shape")
        arr = np.frombuffer(buffer[begin:end], dtype=np_dtype).reshape(shape).copy()
        if dtype == "BF16":
            arr = _bf16_to_f32(arr)
        tensors[name] = arr
    return tensors, dict(metadata)


def write_safetensors(
    path: str,
    tensors: list[tuple[str, np.ndarray, str]],
    metadata: dict[str, str] | None = None,
) -> None:
    """Writes [(name, array, dtype name)] in that order; the header is padded
    with spaces to a multiple of 8 bytes, like the reference implementation."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, arr, dtype in tensors:
        arr = np.asarray(arr)
        if dtype == "BF16":
            raw = _f32_to_bf16(arr.astype(np.float32)).tobytes()
        else:
            raw = np.ascontiguousarray(arr, dtype=_ST_DTYPES[dtype]).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in chunks:
            f.write(raw)


# ---------------------------------------------------------------------------
# Config (docs/MODEL-SPEC.md, "Config")
# ---------------------------------------------------------------------------

_INT_KEYS = {
    "vocab_size", "d_model", "n_layers", "n_heads", "head_dim", "n_kv_heads",
    "max_seq_len", "q_lora_rank", "kv_lora_rank", "rope_head_dim", "ffn_hidden",
    "n_experts", "top_k", "n_shared_experts",
}
_INT_KEYS_ALLOWING_ZERO = {"n_experts", "n_shared_experts"}
_FLOAT_KEYS = {"rope_theta", "rope_fraction", "aux_loss_coef", "norm_eps"}
_KNOWN_KEYS = _INT_KEYS | _FLOAT_KEYS | {"attention", "ffn", "tie_embeddings"}


class ConfigError(ValueError):
    pass


@dataclass
class Config:
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    head_dim: int
    attention: str
    n_kv_heads: int  # for mla: unused (kept equal to n_heads)
    max_seq_len: int
    rope_theta: float
    rope_fraction: float
    q_lora_rank: int | None
    kv_lora_rank: int | None
    rope_head_dim: int | None
    ffn: str
    ffn_hidden: int
    n_experts: int
    top_k: int
    n_shared_experts: int
    aux_loss_coef: float
    norm_eps: float
    tie_embeddings: bool

    @property
    def rope_dims(self) -> int:
        """r for mha/gqa/mqa: 2·floor(rope_fraction·dh/2), computed in double."""
        return 2 * math.floor(self.rope_fraction * self.head_dim / 2)

    @staticmethod
    def from_json(obj: dict) -> "Config":
        """Applies the spec's defaults and rules; a broken rule raises
        ConfigError naming the key."""
        if not isinstance(obj, dict):
            raise ConfigError("config: not a JSON object")
        for key in obj:
            if key not in _KNOWN_KEYS:
                raise ConfigError(f"config: unknown key '{key}'")
        for key in _INT_KEYS & obj.keys():
            v = obj[key]
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"config: '{key}' must be a JSON integer, got {v!r}")
            if v < 0 or (v == 0 and key not in _INT_KEYS_ALLOWING_ZERO):
                raise ConfigError(f"config: '{key}' must be positive, got {v}")
        for key in _FLOAT_KEYS & obj.keys():
            v = obj[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"config: '{key}' must be a number, got {v!r}")

        def required(key):
            if key not in obj:
                raise ConfigError(f"config: '{key}' is required")
            return obj[key]

        V, D, L, H = (required(k) for k in ("vocab_size", "d_model", "n_layers", "n_heads"))
        if "head_dim" in obj:
            dh = obj["head_dim"]
        elif D % H == 0:
            dh = D // H
        else:
            raise ConfigError("config: 'head_dim' is required when n_heads does not divide d_model")

        attention = obj.get("attention", "mha")
        if attention not in ("mha", "gqa", "mqa", "mla"):
            raise ConfigError(
                f"config: 'attention' must be mha, gqa, mqa or mla, got {attention!r}"
            )
        if attention == "mha":
            hkv = obj.get("n_kv_heads", H)
            if hkv != H:
                raise ConfigError("config: 'n_kv_heads' must equal n_heads for mha")
        elif attention == "mqa":
            hkv = obj.get("n_kv_heads", 1)
            if hkv != 1:
                raise ConfigError("config: 'n_kv_heads' must be 1 for mqa")
        elif attention == "gqa":
            hkv = required("n_kv_heads")
            if H % hkv != 0:
                raise ConfigError("config: 'n_kv_heads' must divide n_heads for gqa")
        else:  # mla ignores n_kv_heads
            hkv = H

        q_rank = obj.get("q_lora_rank")
        kv_rank = obj.get("kv_lora_rank")
        dr = obj.get("rope_head_dim")
        if attention == "mla":
            q_rank, kv_rank, dr = (
                required(k) for k in ("q_lora_rank", "kv_lora_rank", "rope_head_dim")
            )
            if dr % 2 != 0:
                raise ConfigError("config: 'rope_head_dim' must be even")

        rope_fraction = float(obj.get("rope_fraction", 1.0))
        if not 0.0 <= rope_fraction <= 1.0:
            raise ConfigError("config: 'rope_fraction' must lie in [0, 1]")

        ffn = obj.get("ffn", "swiglu")
        if ffn not in ("swiglu", "relu"):
            raise ConfigError(f"config: 'ffn' must be swiglu or relu, got {ffn!r}")
        if "ffn_hidden" in obj:
            hidden = obj["ffn_hidden"]
        elif ffn == "relu":
            hidden = 4 * D
        else:
            hidden = 8 * math.ceil(8 * D / 3 / 8)  # round_up(8·D/3, 8)

        E = obj.get("n_experts", 0)
        top_k = obj.get("top_k", 2)
        shared = obj.get("n_shared_experts", 0)
        if E > 0 and not 1 <= top_k <= E:
            raise ConfigError("config: 'top_k' must lie in 1 ... n_experts")
        if E == 0 and shared != 0:
            raise ConfigError("config: 'n_shared_experts' must be 0 without experts")

        tie = obj.get("tie_embeddings", False)
        if not isinstance(tie, bool):
            raise ConfigError("config: 'tie_embeddings' must be true or false")

        return Config(
            vocab_size=V, d_model=D, n_layers=L, n_heads=H, head_dim=dh,
            attention=attention, n_kv_heads=hkv,
            max_seq_len=obj.get("max_seq_len", 256),
            rope_theta=float(obj.get("rope_theta", 10000.0)),
            rope_fraction=rope_fraction,
            q_lora_rank=q_rank, kv_lora_rank=kv_rank, rope_head_dim=dr,
            ffn=ffn, ffn_hidden=hidden, n_experts=E, top_k=top_k,
            n_shared_experts=shared,
            aux_loss_coef=float(obj.get("aux_loss_coef", 0.01)),
            norm_eps=float(obj.get("norm_eps", 1e-6)),
            tie_embeddings=tie,
        )


def _ffn_shapes(cfg: Config, prefix: str) -> list[tuple[str, list[int]]]:
    D, Fh = cfg.d_model, cfg.ffn_hidden
    if cfg.ffn == "swiglu":
        return [
            (prefix + "w_gate.weight", [Fh, D]),
            (prefix + "w_up.weight", [Fh, D]),
            (prefix + "w_down.weight", [D, Fh]),
        ]
    return [
        (prefix + "w_up.weight", [Fh, D]),
        (prefix + "w_up.bias", [Fh]),
        (prefix + "w_down.weight", [D, Fh]),
        (prefix + "w_down.bias", [D]),
    ]


def parameter_shapes(cfg: Config) -> list[tuple[str, list[int]]]:
    """Every parameter's spec name and shape, in a natural order."""
    D, H, dh = cfg.d_model, cfg.n_heads, cfg.head_dim
    out = [("tok_emb.weight", [cfg.vocab_size, D])]
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        out.append((p + "attn_norm.weight", [D]))
        a = p + "attn."
        if cfg.attention == "mla":
            dcq, dc, dr = cfg.q_lora_rank, cfg.kv_lora_rank, cfg.rope_head_dim
            out += [
                (a + "w_dq.weight", [dcq, D]),
                (a + "w_uq.weight", [H * dh, dcq]),
                (a + "w_qr.weight", [H * dr, dcq]),
                (a + "w_dkv.weight", [dc, D]),
                (a + "w_uk.weight", [H * dh, dc]),
                (a + "w_uv.weight", [H * dh, dc]),
                (a + "w_kr.weight", [dr, D]),
                (a + "wo.weight", [D, H * dh]),
            ]
        else:
            hkv = cfg.n_kv_heads
            out += [
                (a + "wq.weight", [H * dh, D]),
                (a + "wk.weight", [hkv * dh, D]),
                (a + "wv.weight", [hkv * dh, D]),
                (a + "wo.weight", [D, H * dh]),
            ]
        out.append((p + "ffn_norm.weight", [D]))
        if cfg.n_experts == 0:
            out += _ffn_shapes(cfg, p + "ffn.")
        else:
            out.append((p + "moe.router.weight", [cfg.n_experts, D]))
            for e in range(cfg.n_experts):
                out += _ffn_shapes(cfg, p + f"moe.experts.{e}.")
            for s in range(cfg.n_shared_experts):
                out += _ffn_shapes(cfg, p + f"moe.shared.{s}.")
    out.append(("norm.weight", [D]))
    if not cfg.tie_embeddings:
        out.append(("lm_head.weight", [cfg.vocab_size, D]))
    return out


# ---------------------------------------------------------------------------
# The model (docs/MODEL-SPEC.md, "Forward pass" and "Loss")
#
# Parameters are a dict {spec name: torch tensor}. Every function takes the
# activations of one layer; shapes are noted as [B, T, ...].
# ---------------------------------------------------------------------------


def rms_norm(x: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x², last axis) + eps) · g"""
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * g


def rope(x: torch.Tensor, r: int, theta: float) -> torch.Tensor:
    """Rotates the first r channels of x [B, T, heads, d] in adjacent pairs
    (x[2j], x[2j+1]) by pos·θ_j, θ_j = theta^(−2j/r), pos = 0 … T−1.
    Channels r … d−1 pass unchanged. Angles, cos and sin are computed in double."""
    if r == 0:
        return x
    T = x.shape[1]
    j = torch.arange(r // 2, dtype=torch.float64)
    freqs = theta ** (-2.0 * j / r)  # θ_j
    pos = torch.arange(T, dtype=torch.float64)
    angle = pos[:, None] * freqs[None, :]  # [T, r/2]
    cos = torch.cos(angle).to(x.dtype)[None, :, None, :]  # [1, T, 1, r/2]
    sin = torch.sin(angle).to(x.dtype)[None, :, None, :]
    rot = x[..., :r].reshape(*x.shape[:-1], r // 2, 2)
    x0, x1 = rot[..., 0], rot[..., 1]
    y0 = x0 * cos - x1 * sin
    y1 = x0 * sin + x1 * cos
    rotated = torch.stack([y0, y1], dim=-1).reshape(*x.shape[:-1], r)
    return torch.cat([rotated, x[..., r:]], dim=-1)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     scale: float) -> torch.Tensor:
    """q, k [B, H, T, dk], v [B, H, T, dv] -> [B, H, T, dv]; position t sees 0 … t."""
    T = q.shape[2]
    s = (q @ k.transpose(-1, -2)) * scale
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    s = s.masked_fill(future, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """y = x · Wᵀ (+ b); W stored [out, in]."""
    y = x @ w.t()
    return y if b is None else y + b


def attention_gqa(cfg: Config, P: dict, a: str, x: torch.Tensor) -> torch.Tensor:
    """mha / gqa / mqa: query head h reads key/value head h // (H/Hkv)."""
    B, T, _ = x.shape
    H, hkv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
    q = linear(x, P[a + "wq.weight"]).reshape(B, T, H, dh)
    k = linear(x, P[a + "wk.weight"]).reshape(B, T, hkv, dh)
    v = linear(x, P[a + "wv.weight"]).reshape(B, T, hkv, dh)
    r = cfg.rope_dims
    q, k = rope(q, r, cfg.rope_theta), rope(k, r, cfg.rope_theta)
    kv_of_head = torch.arange(H) // (H // hkv)
    q = q.transpose(1, 2)  # [B, H, T, dh]
    k = k.transpose(1, 2)[:, kv_of_head]  # [B, H, T, dh]
    v = v.transpose(1, 2)[:, kv_of_head]
    o = causal_attention(q, k, v, 1.0 / math.sqrt(dh))
    o = o.transpose(1, 2).reshape(B, T, H * dh)
    return linear(o, P[a + "wo.weight"])


def attention_mla(cfg: Config, P: dict, a: str, x: torch.Tensor) -> torch.Tensor:
    """DeepSeek-V2 style multi-latent attention with decoupled RoPE."""
    B, T, _ = x.shape
    H, dh, dr = cfg.n_heads, cfg.head_dim, cfg.rope_head_dim
    c_q = linear(x, P[a + "w_dq.weight"])  # [B, T, d_cq]
    q_c = linear(c_q, P[a + "w_uq.weight"]).reshape(B, T, H, dh)
    q_r = rope(linear(c_q, P[a + "w_qr.weight"]).reshape(B, T, H, dr), dr, cfg.rope_theta)
    c_kv = linear(x, P[a + "w_dkv.weight"])  # [B, T, d_c]
    k_c = linear(c_kv, P[a + "w_uk.weight"]).reshape(B, T, H, dh)
    v = linear(c_kv, P[a + "w_uv.weight"]).reshape(B, T, H, dh)
    k_r = rope(linear(x, P[a + "w_kr.weight"]).reshape(B, T, 1, dr), dr, cfg.rope_theta)
    q = torch.cat([q_c, q_r], dim=-1)  # [B, T, H, dh + dr]
    k = torch.cat([k_c, k_r.expand(B, T, H, dr)], dim=-1)  # k_r shared by all heads
    o = causal_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), 1.0 / math.sqrt(dh + dr)
    )
    o = o.transpose(1, 2).reshape(B, T, H * dh)
    return linear(o, P[a + "wo.weight"])


def ffn(cfg: Config, P: dict, f: str, x: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
    """swiglu: w_down(silu(x·w_gateᵀ) ⊙ (x·w_upᵀ));
    relu:   w_down(relu(x·w_upᵀ + b_up)) + b_down."""
    if cfg.ffn == "swiglu":
        h = F.silu(linear(x, P[f + "w_gate.weight"])) * linear(x, P[f + "w_up.weight"])
        return linear(h, P[f + "w_down.weight"])
    pre = linear(x, P[f + "w_up.weight"], P[f + "w_up.bias"])
    if trace is not None and pre.numel() > 0:  # distance to the relu kink
        trace["relu_margin"] = min(trace.get("relu_margin", math.inf), pre.abs().min().item())
    return linear(torch.relu(pre), P[f + "w_down.weight"], P[f + "w_down.bias"])


def top_k_lowest_index_on_ties(logits: torch.Tensor, k: int) -> torch.Tensor:
    """[N, E] -> [N, k] indices of the k largest logits of each row, largest
    first; among equal logits the lower index wins. (torch.topk makes no such
    promise, so this picks by repeated argmax, which returns the first maximum.)"""
    masked = logits.detach().clone()
    picks = []
    for _ in range(k):
        idx = torch.argmax(masked, dim=-1)  # first maximal index
        picks.append(idx)
        masked[torch.arange(masked.shape[0]), idx] = float("-inf")
    return torch.stack(picks, dim=-1)


def moe(cfg: Config, P: dict, m: str, x: torch.Tensor, trace: dict | None = None):
    """Mixture of experts: returns (y [B, T, D], the layer's aux loss [])."""
    B, T, D = x.shape
    E, k = cfg.n_experts, cfg.top_k
    xs = x.reshape(B * T, D)
    N = xs.shape[0]
    logits_r = linear(xs, P[m + "router.weight"])  # [N, E]
    p = torch.softmax(logits_r, dim=-1)
    chosen = top_k_lowest_index_on_ties(logits_r, k)  # [N, k]
    if k == 1:
        gates = p.gather(1, chosen)  # Switch: the full-softmax probability
    else:
        gates = torch.softmax(logits_r.gather(1, chosen), dim=-1)  # Mixtral
    if trace is not None:  # for the data generator: how close routing is to a switch
        trace.setdefault("router", []).append((logits_r.detach().clone(), chosen.clone()))

    y = torch.zeros_like(xs)
    for e in range(E):
        token, slot = torch.nonzero(chosen == e, as_tuple=True)
        if token.numel() == 0:
            continue  # no token chose e: it gets no gradient
        out = ffn(cfg, P, m + f"experts.{e}.", xs[token], trace)
        y = y.index_add(0, token, gates[token, slot].unsqueeze(-1) * out)
    for s in range(cfg.n_shared_experts):
        y = y + ffn(cfg, P, m + f"shared.{s}.", xs, trace)

    # Switch load-balancing loss: f_e (no gradient) · P_e, times E.
    counts = torch.bincount(chosen.reshape(-1), minlength=E).to(x.dtype)
    f = (counts / (N * k)).detach()
    P_mean = p.mean(dim=0)
    aux = E * (f * P_mean).sum()
    return y.reshape(B, T, D), aux


def forward(cfg: Config, P: dict, inputs: torch.Tensor, targets: torch.Tensor,
            trace: dict | None = None) -> dict:
    """inputs, targets int64 [B, T] -> dict of logits [B, T, V], loss, ce, aux (scalars)."""
    B, T = inputs.shape
    if T > cfg.max_seq_len:
        raise ValueError(f"sequence length {T} exceeds max_seq_len {cfg.max_seq_len}")
    emb = P["tok_emb.weight"]
    x = emb[inputs]  # [B, T, D]
    aux = torch.zeros((), dtype=emb.dtype)
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        h = rms_norm(x, P[p + "attn_norm.weight"], cfg.norm_eps)
        attn = attention_mla if cfg.attention == "mla" else attention_gqa
        x = x + attn(cfg, P, p + "attn.", h)
        h = rms_norm(x, P[p + "ffn_norm.weight"], cfg.norm_eps)
        if cfg.n_experts == 0:
            x = x + ffn(cfg, P, p + "ffn.", h, trace)
        else:
            y, layer_aux = moe(cfg, P, p + "moe.", h, trace)
            x = x + y
            aux = aux + layer_aux
    h = rms_norm(x, P["norm.weight"], cfg.norm_eps)
    head = emb if cfg.tie_embeddings else P["lm_head.weight"]
    logits = linear(h, head)  # [B, T, V]
    ce = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), reduction="mean")
    loss = ce + cfg.aux_loss_coef * aux
    return {"logits": logits, "loss": loss, "ce": ce, "aux": aux}


# ---------------------------------------------------------------------------
# Checkpoints, batches and inspect
# ---------------------------------------------------------------------------

_TORCH_DTYPES = {"f32": torch.float32, "f64": torch.float64}


def load_checkpoint(path: str, dtype: torch.dtype = torch.float64) -> tuple[Config, dict]:
    """(config, {name: tensor}) from a checkpoint; tensors must match the config
    exactly (optimizer state optim.m./optim.v. is allowed and ignored)."""
    tensors, metadata = read_safetensors(path)
    if "config" not in metadata:
        raise ValueError(f"{path}: no 'config' in __metadata__")
    cfg = Config.from_json(json.loads(metadata["config"]))
    params = {}
    for name, shape in parameter_shapes(cfg):
        if name not in tensors:
            raise ValueError(f"{path}: missing tensor {name}")
        arr = tensors[name]
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{path}: tensor {name} is not floating point")
        if list(arr.shape) != shape:
            raise ValueError(f"{path}: tensor {name} has shape {list(arr.shape)}, expected {shape}")
        params[name] = torch.from_numpy(arr).to(dtype)
    for name in tensors:
        if name not in params and not name.startswith(("optim.m.", "optim.v.")):
            raise ValueError(f"{path}: unknown tensor {name}")
    return cfg, params


def load_batch(path: str, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """inputs, targets int64 [B, T] from a batch file (I64 or I32)."""
    tensors, _ = read_safetensors(path)
    out = []
    for name in ("inputs", "targets"):
        arr = tensors[name]
        if arr.dtype.kind != "i" or arr.ndim != 2:
            raise ValueError(f"{path}: {name} must be an integer [B, T] tensor")
        if arr.min() < 0 or arr.max() >= vocab_size:
            raise ValueError(f"{path}: {name} holds a token id outside [0, {vocab_size})")
        out.append(torch.from_numpy(arr.astype(np.int64)))
    if out[0].shape != out[1].shape:
        raise ValueError(f"{path}: inputs and targets differ in shape")
    return out[0], out[1]


def inspect(cfg: Config, params: dict, inputs: torch.Tensor, targets: torch.Tensor,
            dtype: torch.dtype = torch.float64, trace: dict | None = None) -> dict:
    """The outputs of `attnlab inspect`: logits, loss, ce, aux and grad.<name>
    of every parameter (zeros for an expert no token chose), computed in dtype."""
    P = {n: t.detach().to(dtype).requires_grad_(True) for n, t in params.items()}
    out = forward(cfg, P, inputs, targets, trace)
    out["loss"].backward()
    result = {k: out[k].detach() for k in ("logits", "loss", "ce", "aux")}
    for name, _ in parameter_shapes(cfg):
        g = P[name].grad
        result["grad." + name] = torch.zeros_like(P[name]) if g is None else g.detach()
    return result


def write_outputs(path: str, outputs: dict, dtype: str, metadata: dict | None = None) -> None:
    st = "F64" if dtype == "f64" else "F32"
    write_safetensors(path, [(n, t.numpy(), st) for n, t in outputs.items()], metadata)


def gradcheck(cfg: Config, params: dict, inputs: torch.Tensor, targets: torch.Tensor,
              prepare=None) -> bool:
    """torch.autograd.gradcheck, in float64, of (loss, logits) with respect to
    every parameter: checks this implementation's gradients against finite
    differences (the f_e of the aux loss carry no gradient by the spec, and
    stay fixed under small perturbations, so they agree). `prepare`, if given,
    maps the parameter dict before the forward pass (e.g. to keep a tie)."""
    names = [n for n, _ in parameter_shapes(cfg)]
    leaves = [params[n].detach().to(torch.float64).requires_grad_(True) for n in names]

    def fn(*tensors):
        P = dict(zip(names, tensors))
        out = forward(cfg, prepare(P) if prepare else P, inputs, targets)
        return out["loss"], out["logits"]

    return torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7, rtol=1e-5)


# ---------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------


def relative_errors(a: dict, b: dict, tiny: float = 1e-30) -> dict[str, float]:
    """Per tensor: max|a − b| / max(max|b|, tiny), b taken as the reference.
    Names or shapes that differ raise ValueError."""
    if set(a) != set(b):
        raise ValueError(
            f"different tensors: only in first {sorted(set(a) - set(b))}, "
            f"only in second {sorted(set(b) - set(a))}"
        )
    errors = {}
    for name in b:
        x, y = np.asarray(a[name], np.float64), np.asarray(b[name], np.float64)
        if x.shape != y.shape:
            raise ValueError(f"{name}: shapes differ, {list(x.shape)} and {list(y.shape)}")
        if x.size == 0:
            errors[name] = 0.0
            continue
        diff = float(np.max(np.abs(x - y)))
        scale = max(float(np.max(np.abs(y))), tiny)
        errors[name] = diff / scale if math.isfinite(diff) else math.inf
    return errors


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _cmd_inspect(args) -> int:
    dtype = _TORCH_DTYPES[args.dtype]
    cfg, params = load_checkpoint(args.checkpoint, dtype)
    inputs, targets = load_batch(args.batch, cfg.vocab_size)
    out = inspect(cfg, params, inputs, targets, dtype)
    write_outputs(args.out, out, args.dtype, {"checkpoint": args.checkpoint, "dtype": args.dtype,
                                               "implementation": "bench/reference_model.py"})
    B, T = inputs.shape
    print(f"loss {out['loss'].item():.6f} (ce {out['ce'].item():.6f}, aux {out['aux'].item():.6f}) "
          f"on B={B} T={T}; wrote {args.out}")
    return 0


def _cmd_compare(args) -> int:
    a, _ = read_safetensors(args.a)
    b, _ = read_safetensors(args.b)
    try:
        errors = relative_errors(a, b)
    except ValueError as e:
        print(f"compare: {e}", file=sys.stderr)
        return 1
    width = max(len(n) for n in errors)
    for name, err in errors.items():
        flag = "  FAIL" if not err <= args.rtol else ""
        print(f"{name:<{width}}  {err:.3e}{flag}")
    worst = max(errors, key=lambda n: errors[n])
    ok = all(e <= args.rtol for e in errors.values())
    print(f"worst: {worst} {errors[worst]:.3e} ({'within' if ok else 'ABOVE'} rtol {args.rtol:g})")
    return 0 if ok else 1


def _cmd_gradcheck(args) -> int:
    cfg, params = load_checkpoint(args.checkpoint, torch.float64)
    inputs, targets = load_batch(args.batch, cfg.vocab_size)
    ok = gradcheck(cfg, params, inputs, targets)
    print(f"gradcheck {'passed' if ok else 'FAILED'}: {args.checkpoint}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect",
                       help="logits, loss and gradients of one batch (as attnlab inspect)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    p.set_defaults(run=_cmd_inspect)

    p = sub.add_parser("compare", help="per-tensor max relative error of A against reference B")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rtol", type=float, default=1e-4)
    p.set_defaults(run=_cmd_compare)

    p = sub.add_parser("gradcheck", help="torch.autograd.gradcheck of this implementation (f64)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batch", required=True)
    p.set_defaults(run=_cmd_gradcheck)

    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small and deterministic
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
