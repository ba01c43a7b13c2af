"""From what the user typed (``--model``) to a loadable folder and an identity: the sha256 of a GGUF, the
resolved commit of a hub model, or a content fingerprint of a local folder (and of a LoRA adapter).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

# Tulu-2's format, for models whose tokenizer has no chat template.
from .catalogue import DEFAULT_EMBEDDED, EMBEDDED, file_sha256, join_embedded
from .gguf import convert_gguf, restored_settings


@dataclass(frozen=True)
class ResolvedModel:
    load_path: str  # folder or hub id handed to from_pretrained
    revision: str | None
    identity: dict[str, Any]


def _folder_fingerprint(folder: Path) -> str:
    """Content fingerprint of a model folder: small files whole, large ones sampled.

    Hashing every byte of a 13B checkpoint would take minutes; names, sizes and
    three 1 MiB windows of each large file tell checkpoints apart in practice.
    """
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        size = f.stat().st_size
        h.update(f"{f.relative_to(folder)}\0{size}\0".encode())
        with f.open("rb") as src:
            if size <= 64 << 20:
                h.update(src.read())
            else:
                for off in (0, size // 2, size - (1 << 20)):
                    src.seek(off)
                    h.update(src.read(1 << 20))
    return h.hexdigest()


_WEIGHTS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json")


_TOKENIZER = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "*.tiktoken")


def _check_model_folder(path: Path) -> None:
    """A local model folder that transformers can load: a readable config, weights and a tokenizer."""
    cfg = path / "config.json"
    if not cfg.exists():
        raise UserError(f"{path}: folder has no config.json; not a transformers model")
    try:
        json.loads(cfg.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f"line {e.lineno}, column {e.colno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise UserError(f"{cfg}: not valid JSON ({where})") from None
    if not any(next(path.glob(p), None) for p in _WEIGHTS):
        raise UserError(f"{path}: no weights in the folder (*.safetensors or pytorch_model*.bin)")
    if not any(next(path.glob(p), None) for p in _TOKENIZER):
        raise UserError(f"{path}: no tokenizer in the folder (tokenizer.json, tokenizer.model or vocab.json)")


def resolve_model(spec: str, revision: str | None = None) -> ResolvedModel:
    if spec == "embedded" or spec.startswith("embedded:"):
        name = spec.partition(":")[2] or DEFAULT_EMBEDDED
        if name not in EMBEDDED:
            raise UserError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED)}")
        gguf, digest = join_embedded(EMBEDDED[name])
        folder = convert_gguf(gguf, digest)
        return ResolvedModel(
            str(folder), None, {"kind": "embedded", "name": name, "gguf_sha256": digest, **restored_settings(folder)}
        )
    if spec.startswith("standin:"):
        from .standin import standin_folder

        folder = standin_folder(spec.partition(":")[2], lambda: Path(resolve_model("embedded:smollm2-135m").load_path))
        return ResolvedModel(
            str(folder), None, {"kind": "standin", "name": folder.name, "fingerprint": _folder_fingerprint(folder)}
        )
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise UserError(f"{spec}: GGUF file not found")
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise UserError(f"{spec}: not a GGUF file (it does not start with the bytes 'GGUF')")
        digest = file_sha256(path)
        folder = convert_gguf(path, digest)
        return ResolvedModel(
            str(folder), None, {"kind": "gguf", "name": path.name, "gguf_sha256": digest, **restored_settings(folder)}
        )
    if path.is_dir():
        _check_model_folder(path)
        return ResolvedModel(
            str(path), None, {"kind": "folder", "name": path.name, "fingerprint": _folder_fingerprint(path)}
        )
    if spec.startswith((".", "/", "~")) or os.sep in spec and spec.count("/") != 1:
        raise UserError(f"{spec}: model path not found")
    if spec.count("/") != 1:
        raise UserError(
            f"unknown model {spec!r}: use 'embedded', 'embedded:NAME', a .gguf file, a model folder "
            "or a hub id org/name"
        )
    return ResolvedModel(spec, revision, {"kind": "hub", "name": spec, "revision": _hub_commit(spec, revision)})


def adapter_fingerprint(path: str | Path) -> str:
    folder = Path(path)
    files = [folder / "adapter_config.json", folder / "adapter_model.safetensors"]
    if not all(f.exists() for f in files):
        raise UserError(f"{path}: not a LoRA adapter folder (needs adapter_config.json and adapter_model.safetensors)")
    # peft writes target_modules from a set, in an order that changes with every process's string
    # hashing: hash the configuration canonically, or one adapter gets a new identity in each process.
    try:
        config = json.loads(files[0].read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{files[0]}: not valid JSON") from None
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    h.update(files[1].read_bytes())
    return h.hexdigest()


def _hub_commit(repo: str, revision: str | None) -> str:
    """The commit a hub id resolves to, so 'main' today and 'main' next month differ."""
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(repo, revision=revision).sha or (revision or "main")
    except Exception:
        # Offline: use the locally cached snapshot, whose folder name is the commit.
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(repo, revision=revision, local_files_only=True)
            return Path(local).name
        except Exception:
            raise UserError(f"hub model {repo!r}: not reachable and not in the local hub cache") from None
