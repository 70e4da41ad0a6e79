"""K-quant GGUF fixtures for crates/erebor-model/tests/gguf_kquant.rs, with the expected values from
the `gguf` Python package (gguf.quants.dequantize, llama.cpp's own reference in numpy).

Writes into OUT (default crates/erebor-model/tests/fixtures/gguf-kquant):

* blocks.gguf: raw Q4_K, Q5_K and Q6_K super-blocks (random bytes; the f16 scales set to finite
  values of both signs, one of them subnormal) as tensors `q4_k`, `q5_k`, `q6_k`, each beside
  `<name>.expected`, an F32 tensor holding gguf.quants.dequantize's values. erebor must give
  exactly these f32 values.
* tiny-llama-kquant.gguf: a one-layer Llama as llama.cpp lays it out (blk.N names, q/k rows
  permuted for its rotary layout, matrices in Q4_K / Q5_K / Q6_K / Q8_0 as a Q4_K_M file mixes
  them), with linear RoPE scaling (factor 2) and a sliding window of 16, and expected.json: per
  Hugging Face tensor the SHA-256 of its dequantised float32 bytes in Hugging Face layout (q/k
  rows un-permuted), and the config fields the import must carry over.

    .venv-eval/bin/python scripts/gguf_kquant_fixture.py [OUT]
"""
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

OUT = sys.argv[1] if len(sys.argv) > 1 else "crates/erebor-model/tests/fixtures/gguf-kquant"
rng = np.random.default_rng(14)

# (bytes per block, byte offsets of the f16 scale fields)
LAYOUT = {T.Q4_K: (144, [0, 2]), T.Q5_K: (176, [0, 2]), T.Q6_K: (210, [208]), T.Q8_0: (34, [0])}
VALUES_PER_BLOCK = {T.Q4_K: 256, T.Q5_K: 256, T.Q6_K: 256, T.Q8_0: 32}


def random_blocks(qtype, rows, cols, scale=0.02):
    """Random quantised bytes for a rows x cols tensor; scale fields are finite f16 values."""
    size, scale_offsets = LAYOUT[qtype]
    n_blocks = rows * cols // VALUES_PER_BLOCK[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in scale_offsets:
        s = (rng.uniform(0.2, 1.0, n_blocks) * scale * rng.choice([-1.0, 1.0], n_blocks)).astype(np.float16)
        raw[:, off:off + 2] = s.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // VALUES_PER_BLOCK[qtype] * size)


def write_blocks(path):
    w = gguf.GGUFWriter(path, "llama")
    for name, qtype in [("q4_k", T.Q4_K), ("q5_k", T.Q5_K), ("q6_k", T.Q6_K)]:
        raw = random_blocks(qtype, 3, 256, scale=1.0)
        # block 2: a subnormal f16 super-block scale (2^-20) and a large one (1000)
        size, offs = LAYOUT[qtype]
        raw[2, offs[0]:offs[0] + 2] = np.array([2.0 ** -20], np.float16).view(np.uint8)
        raw[1, offs[-1]:offs[-1] + 2] = np.array([1000.0], np.float16).view(np.uint8)
        expected = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        assert expected.shape == (3, 256) and np.isfinite(expected).all()
        w.add_tensor(name, raw, raw_dtype=qtype)
        w.add_tensor(name + ".expected", expected)
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def permute(x, n_head):
    """llama.cpp convert_hf_to_gguf.py's LlamaModel.permute (HF rows -> GGUF rows)."""
    return x.reshape(n_head, 2, x.shape[0] // n_head // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def unpermute(x, n_head):
    return x.reshape(n_head, x.shape[0] // n_head // 2, 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def write_model(path, expected_path):
    vocab, hidden, heads, kv_heads, head_dim, inter, window = 32, 256, 4, 1, 64, 256, 16
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_block_count(1)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(500000.0)
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(2.0)
    w.add_sliding_window(window)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    # (GGUF name, HF name, rows, cols, type, rows permuted by llama.cpp with this many heads)
    matrices = [
        ("token_embd.weight", "model.embed_tokens.weight", vocab, hidden, T.Q4_K, None),
        ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", heads * head_dim, hidden, T.Q4_K, heads),
        ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight", kv_heads * head_dim, hidden, T.Q5_K, kv_heads),
        ("blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight", kv_heads * head_dim, hidden, T.Q6_K, None),
        ("blk.0.attn_output.weight", "model.layers.0.self_attn.o_proj.weight", hidden, heads * head_dim, T.Q8_0, None),
        ("blk.0.ffn_gate.weight", "model.layers.0.mlp.gate_proj.weight", inter, hidden, T.Q4_K, None),
        ("blk.0.ffn_up.weight", "model.layers.0.mlp.up_proj.weight", inter, hidden, T.Q5_K, None),
        ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", hidden, inter, T.Q6_K, None),
        ("output.weight", "lm_head.weight", vocab, hidden, T.Q6_K, None),
    ]
    tensors = {}
    for gname, hname, rows, cols, qtype, permuted_heads in matrices:
        raw = random_blocks(qtype, rows, cols)
        w.add_tensor(gname, raw, raw_dtype=qtype)
        values = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        assert values.shape == (rows, cols)
        if permuted_heads:
            assert np.array_equal(permute(unpermute(values, permuted_heads), permuted_heads), values)
            values = unpermute(values, permuted_heads)
        tensors[hname] = tensor_record(values, gguf.GGMLQuantizationType(qtype).name)
    for gname, hname in [("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
                         ("blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight"),
                         ("output_norm.weight", "model.norm.weight")]:
        values = rng.uniform(0.5, 1.5, hidden).astype(np.float32)
        w.add_tensor(gname, values)
        tensors[hname] = tensor_record(values, "F32")
    finish(w)
    expected = {
        "note": "sha256 of each tensor's float32 little-endian bytes, row-major, Hugging Face layout",
        "gguf": gguf.__name__ + " " + version("gguf"), "numpy": np.__version__,
        "config": {"architectures": ["MistralForCausalLM"], "sliding_window": window,
                   "rope_scaling": {"rope_type": "linear", "factor": 2.0}, "rope_theta": 500000.0,
                   "num_key_value_heads": kv_heads, "head_dim": head_dim, "vocab_size": vocab},
        "tensors": tensors,
    }
    with open(expected_path, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)


def tensor_record(values, qtype_name):
    data = np.ascontiguousarray(values, dtype="<f4")
    return {"shape": list(data.shape), "type": qtype_name, "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
            "sum": float(data.astype(np.float64).sum())}


def version(package):
    from importlib.metadata import version as v
    return v(package)


os.makedirs(OUT, exist_ok=True)
write_blocks(os.path.join(OUT, "blocks.gguf"))
write_model(os.path.join(OUT, "tiny-llama-kquant.gguf"), os.path.join(OUT, "expected.json"))
for f in sorted(os.listdir(OUT)):
    print(f, os.path.getsize(os.path.join(OUT, f)), "bytes")
