"""The package's Tulu-shaped stand-ins (selfexplain.models.standin), copied into a test's folder."""

import shutil
from pathlib import Path

from selfexplain.models import resolve_model


def _copy(name: str, folder: Path) -> Path:
    shutil.copytree(resolve_model(f"standin:{name}").load_path, folder)
    return folder


def make_llama_standin(folder: Path) -> Path:
    return _copy("tulu-smollm2", folder)


def make_tiny_llama(folder: Path) -> Path:
    return _copy("tulu-tiny", folder)


def make_gguf_llama(folder: Path) -> Path:
    """Llama-2's tokenizer as a GGUF file carries it (llama.cpp's llama-spm vocabulary, converted the way a
    ``.gguf`` model is) on a tiny seeded random Llama: no chat template, BOS from the GGUF's metadata."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selfexplain.models import gguf_tokenizer
    from selfexplain.tasks.prepare import prepare

    tok, _ = gguf_tokenizer(prepare("llama-vocab") / "ggml-vocab-llama-spm.gguf")
    tok.save_pretrained(folder)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder


def make_tiny_gguf(path: Path) -> Path:
    """A GGUF file with weights, as small as a Llama gets (one layer, width 16, seeded F32 tensors), carrying
    Llama-2's whole vocabulary and tokenizer metadata from llama.cpp's ``ggml-vocab-llama-spm.gguf``: converted
    like any ``.gguf`` model, in a few seconds (SmolLM2's takes ten)."""
    import gguf
    import numpy as np

    from selfexplain.tasks.prepare import prepare

    vocab = gguf.GGUFReader(str(prepare("llama-vocab") / "ggml-vocab-llama-spm.gguf"))
    sizes = {"llama.block_count": 1, "llama.embedding_length": 16, "llama.feed_forward_length": 32,
             "llama.attention.head_count": 2, "llama.attention.head_count_kv": 1, "llama.rope.dimension_count": 8,
             "llama.context_length": 2048}
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, field in vocab.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":  # written by the writer itself
            continue
        kind = field.types[0]
        sub = {"sub_type": field.types[1]} if kind == gguf.GGUFValueType.ARRAY else {}
        writer.add_key_value(key, sizes.get(key, field.contents()), kind, **sub)
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (len(vocab.fields["tokenizer.ggml.tokens"].data), 16),
              "blk.0.attn_q.weight": (16, 16), "blk.0.attn_k.weight": (8, 16), "blk.0.attn_v.weight": (8, 16),
              "blk.0.attn_output.weight": (16, 16), "blk.0.ffn_gate.weight": (32, 16),
              "blk.0.ffn_up.weight": (32, 16), "blk.0.ffn_down.weight": (16, 32)}
    for name, shape in shapes.items():
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))
    for name in ("output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight"):
        writer.add_tensor(name, np.ones(16, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
