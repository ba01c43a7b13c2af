"""Names that become parts of paths: checked, or reduced to a safe slug.

Task and experiment names are chosen by whoever wrote the YAML file, and such
files are shared; a name like ``../../x`` would put a run folder anywhere the
user can write.  Those names are *checked* (a refused name is one error line):
they are identifiers that tables and reports show, so silently changing them
would be confusing.  Model names come from what the user typed (a hub id with a
slash, a folder name) and are *reduced* to a slug for the folder name; the
original stays in the run's ``config.json`` (the model identity).
"""

from __future__ import annotations

import hashlib
import re

MAX_LEN = 64
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._+-]+")


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be part of a path (None when it can)."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name) > MAX_LEN:
        return f"is {len(name)} characters long (at most {MAX_LEN})"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains a control character"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name:
        return "contains '..'"
    if not _SAFE.fullmatch(name):
        return "may hold only letters, digits and . _ + -, and must start with a letter or digit"
    return None


def slug(text: str) -> str:
    """A folder-safe form of ``text``: unsafe runs become ``_``, no leading dot, at most MAX_LEN characters.

    Distinct long texts keep distinct slugs (a cut text ends with a hash of the whole).
    """
    s = _UNSAFE_RUN.sub("_", text).replace("..", "_").lstrip("._-") or "model"
    if len(s) > MAX_LEN:
        s = s[: MAX_LEN - 9] + "-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return s


MODEL_FILE_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".onnx")


def model_folder_name(identity: dict) -> str:
    """The model's part of a run folder's name: readable, the full identity staying in ``config.json``.

    A served model is named by the last path component of its id (servers often name a model by the path of
    its file), and a model file by its stem; both without a model-file suffix.  Others by their name.
    """
    name = str(identity.get("name", "model"))
    if identity.get("kind") in ("server", "gguf"):
        name = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or name
        for suffix in MODEL_FILE_SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
    return slug(name)
