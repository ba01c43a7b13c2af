"""A Llama-2-shaped stand-in built offline: SmolLM2-135M's weights (Llama architecture) with a
tokenizer that, like Llama-2's, puts a BOS before every sequence and has no chat template (so
the Tulu-2 template applies, as for allenai/tulu-2-7b)."""

import json
import shutil
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
