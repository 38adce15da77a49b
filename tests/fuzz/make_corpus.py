#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, tests/fuzz/corpus/<target>/.

The seeds are committed; this script documents where they came from and
rewrites them (`python3 tests/fuzz/make_corpus.py`). Each seed is small (well
under a few KB): libFuzzer mutates them, and they only need to show it the
shape of a valid input and a few near misses.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes); returns the file's bytes."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(*v):
    return struct.pack(f"<{len(v)}f", *v)


def i64(*v):
    return struct.pack(f"<{len(v)}q", *v)


def i32(*v):
    return struct.pack(f"<{len(v)}i", *v)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


TINY_CONFIG = {"vocab_size": 8, "d_model": 4, "n_layers": 1, "n_heads": 2, "max_seq_len": 8}


def seeds_safetensors():
    t = "safetensors"
    write(t, "f32_i64_meta", safetensors(
        [("w", "F32", [2, 2], f32(1, -2, 0.5, 3)), ("ids", "I64", [3], i64(0, 7, -1))],
        {"format": "attnlab.train", "note": "é"}))
    write(t, "bf16_f64_i32", safetensors(
        [("b", "BF16", [3], struct.pack("<3H", 0x3F80, 0xBFC0, 0x3E20)),
         ("d", "F64", [], struct.pack("<d", 2.5)), ("n", "I32", [2], i32(-1, 7))], pad=False))
    write(t, "empty_and_scalar", safetensors(
        [("e", "F32", [0, 3], b""), ("s", "F32", [], f32(1.0)), ("u", "U8", [2], b"\x01\x02")]))
    write(t, "empty_header", safetensors([], {}))
    # a tiny checkpoint-like file: a config in the metadata
    write(t, "checkpoint_like", safetensors(
        [("tok_emb.weight", "F32", [8, 4], f32(*range(32))),
         ("norm.weight", "F32", [4], f32(1, 1, 1, 1))],
        {"config": json.dumps(TINY_CONFIG), "format": "attnlab.train"}))
    # near misses: overlapping tensors, offsets past the end, a huge shape
    write(t, "overlap", struct.pack("<Q", 104) +
          b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
          b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'.ljust(104) + f32(1, 2))
    write(t, "huge_shape", struct.pack("<Q", 80) +
          b'{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}'.ljust(80)
          + f32(0, 0))
    write(t, "huge_header_len", struct.pack("<Q", 1 << 60) + b"{}")


def seeds_config():
    t = "config"
    write(t, "tiny", json.dumps(TINY_CONFIG))
    write(t, "gqa_relu_tied", json.dumps({
        "vocab_size": 65, "d_model": 32, "n_layers": 2, "n_heads": 4, "attention": "gqa",
        "n_kv_heads": 2, "ffn": "relu", "tie_embeddings": True, "rope_fraction": 0.5}))
    write(t, "mqa_head_dim", json.dumps({
        "vocab_size": 65, "d_model": 30, "n_layers": 1, "n_heads": 4, "head_dim": 6,
        "attention": "mqa", "max_seq_len": 16, "rope_theta": 500000.0}))
    write(t, "mla_moe", json.dumps({
        "vocab_size": 65, "d_model": 32, "n_layers": 2, "n_heads": 4, "attention": "mla",
        "q_lora_rank": 16, "kv_lora_rank": 8, "rope_head_dim": 4, "n_experts": 4, "top_k": 2,
        "n_shared_experts": 1, "aux_loss_coef": 0.02, "norm_eps": 1e-5}))
    write(t, "all_keys", json.dumps({
        "vocab_size": 65, "d_model": 64, "n_layers": 2, "n_heads": 4, "head_dim": 16,
        "attention": "mha", "n_kv_heads": 4, "max_seq_len": 64, "rope_theta": 10000.0,
        "rope_fraction": 1.0, "q_lora_rank": 0, "kv_lora_rank": 0, "rope_head_dim": 0,
        "ffn": "swiglu", "ffn_hidden": 176, "n_experts": 0, "top_k": 2, "n_shared_experts": 0,
        "aux_loss_coef": 0.01, "norm_eps": 1e-06, "tie_embeddings": False}, indent=2))
    write(t, "huge", json.dumps({
        "vocab_size": 1 << 40, "d_model": 1 << 20, "n_layers": 1 << 30, "n_heads": 1}))


def seeds_corpus():
    t = "corpus"
    # first byte: bit 0 byte fallback, bits 1-4 seq_len - 1
    write(t, "ascii", b"\x06" + b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 2)
    write(t, "utf8", b"\x03" + "héllo wörld — ünïcödé ✓ 😀 日本語 ".encode() * 3)
    write(t, "invalid_utf8", b"\x02" + b"abc\xe0\x80\xafdef\xc3(xyz\xed\xa0\x80" * 2)
    write(t, "truncated", b"\x00" + b"abcdefghijklmnopqrstuvwxyz\xf0\x9f\x98")
    write(t, "short", b"\x1f" + b"ab")


def seeds_tokenizer_json():
    t = "tokenizer_json"
    chars = sorted(set("\n !',.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    write(t, "shakespeare", json.dumps(
        {"type": "char", "chars": [ord(c) for c in chars], "byte_fallback": False}).encode()
        + b"\0" + b"Speak, speak.\n")
    write(t, "byte_fallback", json.dumps(
        {"type": "char", "chars": [97, 98, 233, 0x1F600], "byte_fallback": True}).encode()
        + b"\0" + "abé😀z日".encode())
    write(t, "ids", json.dumps(
        {"type": "char", "chars": [10, 65, 66], "byte_fallback": True}).encode()
        + b"\0" + struct.pack("<8H", 1, 2, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80, 0, 300))
    write(t, "unsorted", b'{"type":"char","chars":[98,97],"byte_fallback":false}')


def seeds_dataset():
    t = "dataset"

    def manifest(vocab=65, dtype="uint16", train_tokens=4, val_tokens=2, file="train.bin"):
        def split(name, n, f):
            return {"tokens": n, "bytes": n, "documents": 1,
                    "shards": [{"file": f, "tokens": n, "fnv1a64": "cbf29ce484222325"}]}
        return json.dumps({
            "format": "attnlab-dataset", "version": 1,
            "tokenizer": {"kind": "char", "vocab_size": vocab, "byte_fallback": False,
                          "file": "tokenizer.json", "fnv1a64": "0123456789abcdef"},
            "dtype": dtype, "val_fraction": 0.1,
            "splits": {"train": split("train", train_tokens, file),
                       "val": split("val", val_tokens, "val.bin")},
            "sources": [{"path": "corpus.txt", "bytes": 6, "fnv1a64": "0123456789abcdef"}]},
            indent=2).encode()
    write(t, "uint16", manifest() + b"\0" + struct.pack("<4H", 0, 1, 64, 2))
    write(t, "uint32", manifest(vocab=70000, dtype="uint32") + b"\0"
          + struct.pack("<3I", 0, 69999, 70000))
    write(t, "out_of_vocab", manifest() + b"\0" + struct.pack("<2H", 65, 0xFFFF))
    write(t, "escape", manifest(file="../train.bin"))
    write(t, "sums", manifest().replace(b'"tokens": 4,', b'"tokens": 5,', 1))
    write(t, "dtype", manifest(vocab=70000))


def seeds_batch():
    t = "batch"
    write(t, "i64", safetensors(
        [("inputs", "I64", [2, 4], i64(0, 1, 2, 3, 4, 5, 6, 7)),
         ("targets", "I64", [2, 4], i64(1, 2, 3, 4, 5, 6, 7, 8))]))
    write(t, "i32", safetensors(
        [("inputs", "I32", [1, 3], i32(10, 20, 64)), ("targets", "I32", [1, 3], i32(20, 64, 0))]))
    write(t, "out_of_vocab", safetensors(
        [("inputs", "I64", [1, 2], i64(0, 65)), ("targets", "I64", [1, 2], i64(-1, 0))]))
    write(t, "mismatch", safetensors(
        [("inputs", "I64", [1, 2], i64(0, 1)), ("targets", "F32", [2, 1], f32(0, 1))]))


if __name__ == "__main__":
    seeds_safetensors()
    seeds_config()
    seeds_corpus()
    seeds_tokenizer_json()
    seeds_batch()
    seeds_dataset()
