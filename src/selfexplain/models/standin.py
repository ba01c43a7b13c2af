"""Stand-ins shaped like the paper's model (Tulu-2, a Llama-2), built offline for checks without a GPU.

* ``standin:tulu-smollm2``: SmolLM2-135M's weights (Llama architecture) with a tokenizer that, like
  Llama-2's, puts a BOS before every sequence and has no chat template, so the Tulu-2 template applies
  (as for ``allenai/tulu-2-7b``).  Real text, near chance.
* ``standin:tulu-tiny``: that tokenizer on a tiny Llama (2 layers, width 32) whose weights are random
  (seeded) except the output, which always writes one glued word ("lolovelo...") and never ends early.
  It exercises every stage of a preset in seconds (``reproduce --smoke``); its outputs mean nothing.

Both are built once into the cache from the embedded SmolLM2 GGUF; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..locks import cache_entry_lock
from ..paths import cache_dir

STANDINS = ("tulu-smollm2", "tulu-tiny")
VERSION = 3  # bump when a builder changes: the cache folder is named with it


def standin_folder(name: str, smollm2: Callable[[], Path]) -> Path:
    """The built stand-in's model folder (built on first use from ``smollm2()``, SmolLM2's converted folder)."""
    if name not in STANDINS:
        raise UserError(f"unknown stand-in {name!r}; known: {', '.join(STANDINS)}")
    target = cache_dir() / "models" / f"standin-{name}-v{VERSION}"
    if (target / "config.json").exists():
        return target
    source = smollm2()  # may itself wait for, or do, SmolLM2's conversion
    with cache_entry_lock(target, f"the stand-in {name}"):
        if (target / "config.json").exists():  # built by the process we waited for
            return target
        tmp = Path(tempfile.mkdtemp(dir=target.parent))
        (_tulu_smollm2 if name == "tulu-smollm2" else _tulu_tiny)(tmp, source)
        shutil.rmtree(target, ignore_errors=True)  # an unfinished copy; nobody else writes it now
        os.replace(tmp, target)
    return target


def _tulu_tokenizer(folder: Path, src: Path) -> None:
    """SmolLM2's tokenizer made Llama-2-like: BOS first (a TemplateProcessing post-processor), no chat template."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    # Not Tulu-2's "LlamaTokenizer": transformers 5.19 (not 5.0) rebuilds that class with a SentencePiece-style
    # pre-tokenizer over this byte-level vocabulary, which drops spaces and newlines ("HelloworldIhate").
    # The generic class keeps tokenizer.json as written; the BOS comes from its post-processor.
    cfg.update(add_bos_token=True, tokenizer_class="PreTrainedTokenizerFast")
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    bos = cfg["bos_token"]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    tok.save(str(folder / "tokenizer.json"))


def _tulu_smollm2(folder: Path, src: Path) -> None:
    for f in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copyfile(src / f, folder / f)
    _tulu_tokenizer(folder, src)


def _tulu_tiny(folder: Path, src: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    _tulu_tokenizer(folder, src)
    tok = AutoTokenizer.from_pretrained(folder)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng():  # seeded weights without touching the caller's random state
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        # One output dimension read into two word pieces: every reply is one glued word.  A fully random
        # model writes several words, which the counterfactual-word filter drops every time.
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[tok.convert_tokens_to_ids("lo"), 0] = 10.0
        model.lm_head.weight[tok.convert_tokens_to_ids("ve"), 0] = -10.0
    model.save_pretrained(folder)
