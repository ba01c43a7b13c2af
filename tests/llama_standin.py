"""A Llama-2-shaped stand-in built offline: SmolLM2-135M's weights (Llama architecture) with a
tokenizer that, like Llama-2's, puts a BOS before every sequence and has no chat template (so
the Tulu-2 template applies, as for allenai/tulu-2-7b)."""

import json
from pathlib import Path

from selfexplain.backends.models import resolve_model


def make_llama_standin(folder: Path) -> Path:
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    src = Path(resolve_model("embedded:smollm2-135m").load_path)
    folder.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "generation_config.json", "model.safetensors"):
        (folder / f).symlink_to(src / f)
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    cfg.update(add_bos_token=True, tokenizer_class="LlamaTokenizer")
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    bos = cfg["bos_token"]
    bos_id = tok.token_to_id(bos)
    # Llama-2's tokenizer.json: a TemplateProcessing post-processor that writes <s> first.
    tok.post_processor = TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)])
    tok.save(str(folder / "tokenizer.json"))
    return folder


def make_tiny_llama(folder: Path) -> Path:
    """The stand-in's tokenizer (BOS, no chat template) on a tiny Llama: the shape of Tulu-2 at a speed
    that lets a whole preset's grid run in a test.

    Its weights are random (seeded) except the output: the final norm keeps one dimension and the head
    reads it into two word pieces, so every reply is one glued word ("lovevelo...") and never ends early.
    A fully random model writes several words, which the counterfactual-word filter drops every time.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    shaped = make_llama_standin(folder.with_name(folder.name + "-tokenizer"))
    tok = AutoTokenizer.from_pretrained(shaped)
    folder.mkdir(parents=True, exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (folder / f).write_bytes((shaped / f).read_bytes())
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[tok.convert_tokens_to_ids("lo"), 0] = 10.0
        model.lm_head.weight[tok.convert_tokens_to_ids("ve"), 0] = -10.0
    model.save_pretrained(folder)
    return folder
