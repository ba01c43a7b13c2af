"""Loading a resolved model and its tokenizer (an adapter merged in; tokenizers cached per process)."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..errors import UserError

# Tulu-2's format, for models whose tokenizer has no chat template.
from .gguf import clear_quantizer_marker
from .resolve import ResolvedModel, adapter_fingerprint, resolve_model

# Tulu-2's format, for models whose tokenizer has no chat template.
TULU_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def load_model(
    spec: str,
    *,
    revision: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    adapter: str | None = None,
):
    """(model, tokenizer, identity) for inference or training, on ``device`` in ``dtype``.

    A LoRA ``adapter`` folder (from ``selfexplain train``) is merged into the
    weights, so inference runs at the base model's speed; its content hash joins
    the identity so results of different adapters never share a run folder.
    """
    import torch
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(spec, revision)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise UserError(f"--model-args: unknown dtype {dtype!r}")
    kw = {"revision": resolved.revision, "trust_remote_code": trust_remote_code}
    tokenizer = load_tokenizer(resolved, trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(resolved.load_path, dtype=torch_dtype, **kw)
    clear_quantizer_marker(model)
    identity = {**resolved.identity, "dtype": dtype}
    if adapter:
        model, identity["adapter"] = _merge_adapter(model, adapter), adapter_fingerprint(adapter)
    return model.to(device), tokenizer, identity


def load_tokenizer(resolved: ResolvedModel, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer, with Tulu-2's chat template where it has none and a pad token.

    A study loads the same model once per stage (25 stages in the paper's grid): a local folder's tokenizer
    is read once per process and each call gets a copy of its own, since callers may change theirs (a trainer
    sets the padding side).  A copy costs 0.10-0.13 s against 0.29-0.46 s to read the folder of a 49k-token
    vocabulary (SmolLM2, the stand-ins), 0.66 against 0.84 s for Qwen2's 152k (2026-12-04, this machine)."""
    import copy

    key = _tokenizer_key(resolved, trust_remote_code)
    if key is not None and key in _TOKENIZERS:
        _TOKENIZERS.move_to_end(key)
        return copy.deepcopy(_TOKENIZERS[key])
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolved.load_path, revision=resolved.revision, trust_remote_code=trust_remote_code
    )
    if not tokenizer.chat_template:
        tokenizer.chat_template = TULU_TEMPLATE
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if key is not None:
        _TOKENIZERS[key] = copy.deepcopy(tokenizer)
        while len(_TOKENIZERS) > 4:
            _TOKENIZERS.popitem(last=False)
    return tokenizer


_TOKENIZERS: OrderedDict[tuple, Any] = OrderedDict()  # kept unchanged: load_tokenizer hands out copies


def _tokenizer_key(resolved: ResolvedModel, trust_remote_code: bool) -> tuple | None:
    """What a local folder's tokenizer is read from: its path and every file's size and time of change (a file
    rewritten in place reads again).  None (never cached): hub ids, and code from the model's own repository."""
    folder = Path(resolved.load_path)
    if trust_remote_code or not folder.is_dir():
        return None
    files = tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder) if e.is_file()))
    return (str(folder.resolve()), resolved.revision, files)


def _merge_adapter(model: Any, path: str) -> Any:
    from peft import PeftModel

    adapter_fingerprint(path)  # clear error before peft's
    return PeftModel.from_pretrained(model, path).merge_and_unload()
