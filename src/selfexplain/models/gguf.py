"""GGUF files: dequantised once into a cached transformers folder (pinned conversion versions), and the
tokenizer settings a GGUF records that the conversion would lose (BOS/EOS, SentencePiece prefix).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..locks import cache_entry_lock
from ..paths import cache_dir

# Tulu-2's format, for models whose tokenizer has no chat template.


# The releases whose conversion of the embedded GGUF files gives the pinned set-up's folder file by file
# (weights, tokenizer, configs; compared for SmolLM2 under transformers 5.18, 5.19, 5.20, 5.21.1, 5.22.2,
# 5.23 and 5.24 and gguf 0.13 and 0.16-0.19, and for Qwen2.5-Coder-0.5B under 5.18, 5.24 and gguf 0.13).  Older
# transformers convert these tokenizers differently (5.0 adds code-Llama fill-in-the-middle tokens and makes
# <|im_start|> the end of sequence); gguf 0.10 needs sentencepiece, 0.11 fails under numpy 2.  Only a
# conversion checks them: converted folders, hub models, model folders and vLLM load with any release.
GGUF_CONVERSION = {"transformers": ">=5.18,<5.25", "gguf": ">=0.13,<0.20"}


GGUF_PINNED = {"transformers": "5.19.0", "gguf": "0.19.0"}  # as in constraints.txt: the hint to install


def check_conversion_versions(what: str) -> None:
    """One line naming the versions a GGUF conversion needs, before transformers fails somewhere inside."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.specifiers import SpecifierSet

    wrong = []
    for name, spec in GGUF_CONVERSION.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = None
        if have is None or not SpecifierSet(spec).contains(have, prereleases=True):
            wrong.append(f"{name}{spec} (installed: {have or 'none'})")
    if wrong:
        pins = " ".join(f"'{name}=={v}'" for name, v in GGUF_PINNED.items())
        raise UserError(
            f"converting {what} needs {' and '.join(wrong)}: other releases convert it differently, so "
            f"results would not reproduce. Get them with `bash scripts/setup.sh` (the checkout's .venv), or "
            f"pip install {pins}. Hub models, model folders and --backend vllm do not need these versions."
        )


# Written last into a converted folder: what the conversion restored from the GGUF's own metadata.  A folder
# without it was converted before that check (or not finished) and is converted again.
GGUF_NOTE = "selfexplain-gguf.json"


_GGUF_TOKENIZER_KEYS = {
    "add_bos_token": "tokenizer.ggml.add_bos_token",
    "add_eos_token": "tokenizer.ggml.add_eos_token",
    "bos_token_id": "tokenizer.ggml.bos_token_id",
    "eos_token_id": "tokenizer.ggml.eos_token_id",
}


def convert_gguf(gguf: Path, digest: str) -> Path:
    """Dequantize a GGUF once into a safetensors folder (reloads then take seconds)."""
    out = cache_dir() / "models" / f"{gguf.stem}-{digest[:12]}"
    if (out / GGUF_NOTE).exists():
        return out
    check_conversion_versions(gguf.name)
    with cache_entry_lock(out, f"the conversion of {gguf.name}"):
        if not (out / GGUF_NOTE).exists():  # else converted by the process we waited for
            _convert_into(gguf, digest, out)
    return out


def gguf_tokenizer_settings(gguf: str | Path) -> dict[str, Any]:
    """The tokenizer settings a GGUF file states (``tokenizer.ggml.add_bos_token`` and the like)."""
    values = gguf_scalars(gguf, {*_GGUF_TOKENIZER_KEYS.values(), "tokenizer.ggml.model"})
    out: dict[str, Any] = {}
    for name, key in _GGUF_TOKENIZER_KEYS.items():
        if key in values:
            out[name] = bool(values[key]) if name.startswith("add_") else int(values[key])
    if isinstance(values.get("tokenizer.ggml.model"), str):
        out["model"] = values["tokenizer.ggml.model"]
    return out


# GGUF value types (gguf.GGUFValueType): struct formats of the scalars; 8 is a string, 9 an array.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_scalars(gguf: str | Path, keys: set[str]) -> dict[str, Any]:
    """The scalar and string metadata values of ``keys`` in a GGUF file's header.

    Reads the key/value section only, stepping over arrays: ``gguf.GGUFReader`` parses every field into numpy
    views first, 6.5 s for a Qwen2 vocabulary's 151k tokens and merges, where this takes a tenth of a second.
    """
    import mmap
    import struct

    try:
        with open(gguf, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m[:4] != b"GGUF":
                raise UserError(f"{gguf}: not a GGUF file")
            return _read_gguf_scalars(m, keys, gguf)
    except (ValueError, struct.error) as e:  # empty, or cut short
        raise UserError(f"{gguf}: not a complete GGUF file ({e})") from None


def _read_gguf_scalars(m: Any, keys: set[str], gguf: str | Path) -> dict[str, Any]:
    import struct

    order = "<" if struct.unpack_from("<I", m, 4)[0] & 0xFFFF else ">"  # a big-endian file's version reads swapped
    n_kv = struct.unpack_from(order + "Q", m, 16)[0]
    pos, out = 24, {}

    def string() -> str:
        nonlocal pos
        n = struct.unpack_from(order + "Q", m, pos)[0]
        pos += 8 + n
        return m[pos - n : pos].decode("utf-8", "replace")

    for _ in range(n_kv):
        key = string()
        kind = struct.unpack_from(order + "I", m, pos)[0]
        pos += 4
        if kind == 8:
            value: Any = string()
        elif kind == 9:
            item, count = struct.unpack_from(order + "IQ", m, pos)
            pos += 12
            if item == 8:
                for _ in range(count):
                    string()
            elif item in _GGUF_SCALARS:
                pos += count * struct.calcsize(_GGUF_SCALARS[item])
            else:  # arrays of arrays: no tokenizer setting is one; stop rather than misread
                break
            continue
        elif kind in _GGUF_SCALARS:
            fmt = order + _GGUF_SCALARS[kind]
            value = struct.unpack_from(fmt, m, pos)[0]
            pos += struct.calcsize(fmt)
        else:
            raise UserError(f"{gguf}: unknown GGUF value type {kind} for {key!r}")
        if key in keys:
            out[key] = value
            if len(out) == len(keys):
                break
    return out


def restore_gguf_settings(tokenizer: Any, settings: dict[str, Any]) -> list[str]:
    """Put back what transformers' conversion dropped: Llama-2's GGUF says add_bos_token = true, the converted
    tokenizer says False and would encode every prompt without <s>.  BOS/EOS ids are filled in only where the
    tokenizer has none (a chat model's end-of-turn EOS stays).  Returns what was changed."""
    restored = []
    for name in ("add_bos_token", "add_eos_token"):
        if name in settings and bool(getattr(tokenizer, name, False)) != settings[name]:
            setattr(tokenizer, name, settings[name])  # transformers rebuilds the post-processor
            restored.append(f"{name}={settings[name]}")
    for name in ("bos_token_id", "eos_token_id"):
        if name in settings and getattr(tokenizer, name) is None:
            setattr(tokenizer, name.removesuffix("_id"), tokenizer.convert_ids_to_tokens(settings[name]))
            restored.append(f"{name}={settings[name]}")
    if settings.get("model") == "llama" and _spm_prefix_first(tokenizer):
        restored.append("sentencepiece_prefix=always")
    return restored


def _spm_prefix_first(tokenizer: Any) -> bool:
    """A SentencePiece (``llama``) GGUF tokenizer prepends its "▁" only where the text does not start with a space,
    so " Hello" lost a token against llama.cpp and the hub's Llama-2 tokenizer (15 of llama.cpp's 46 reference
    strings).  Those prepend it always (a normalizer, no pre-tokenizer): so does this one after the change."""
    from tokenizers import normalizers

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    state = json.loads(backend.to_str())
    pre = state.get("pre_tokenizer") or {}
    if state.get("normalizer") is not None or pre.get("type") != "Metaspace" or pre.get("prepend_scheme") != "first":
        return False
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    backend.pre_tokenizer = None
    return True


def gguf_tokenizer(gguf: str | Path, settings: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
    """A GGUF's tokenizer as transformers converts it, with the settings the file states (``settings``, read
    from it unless given) put back."""
    from transformers import AutoTokenizer

    gguf = Path(gguf)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return tok, restore_gguf_settings(tok, gguf_tokenizer_settings(gguf) if settings is None else settings)


def _convert_into(gguf: Path, digest: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    settings = gguf_tokenizer_settings(gguf)
    tok, restored = gguf_tokenizer(gguf, settings)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    clear_quantizer_marker(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "selfexplain-source.txt").write_text(f"{gguf.name} sha256={digest}\n")
    (tmp / GGUF_NOTE).write_text(json.dumps({"gguf": settings, "restored": restored}) + "\n")
    shutil.rmtree(out, ignore_errors=True)  # an unfinished copy (no config.json); nobody else writes it now
    os.replace(tmp, out)


def clear_quantizer_marker(model: Any) -> None:
    """A GGUF-loaded model is plain fp32 but still flagged as quantized.

    The flag makes ``Trainer`` and ``save_pretrained`` refuse; the weights are
    ordinary ``nn.Linear`` tensors, so dropping the marker is safe.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def restored_settings(folder: Path) -> dict[str, Any]:
    """For the identity: the tokenizer settings a conversion took from the GGUF (none for the embedded models)."""
    restored = json.loads((folder / GGUF_NOTE).read_text())["restored"]
    return {"tokenizer_from_gguf": restored} if restored else {}
