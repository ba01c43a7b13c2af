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
