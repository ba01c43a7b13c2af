"""The package's Tulu-shaped stand-ins (selfexplain.backends.standin), copied into a test's folder."""

import shutil
from pathlib import Path

from selfexplain.backends.models import resolve_model


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

    from selfexplain.backends.models import gguf_tokenizer
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
