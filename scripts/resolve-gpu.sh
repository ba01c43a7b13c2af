#!/usr/bin/env bash
# What does a researcher's GPU machine get from `pip install 'selfexplain[vllm]'`?  Dry-runs the
# resolution of selfexplain[vllm] and selfexplain[vllm,test] from PyPI for Linux x86_64 with CUDA
# (manylinux_2_28; Python ${PYTHON_VERSION:-3.12}), and prints the versions it would install.  Metadata only:
# uv reads each wheel's METADATA with HTTP range requests where the index publishes none, so no wheel is
# downloaded (the size of its fresh cache is printed to show it).  This machine's pip configuration (a
# torch cap, local wheel folders) plays no part.
#
#   bash scripts/resolve-gpu.sh                 # both extras
#   PYTHON_VERSION=3.11 bash scripts/resolve-gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${SELFEXPLAIN_CHECK_DIR:-/tmp/selfexplain-check}
PY=${PYTHON:-python3}
mkdir -p "$ROOT"
[ -x "$ROOT/uv/bin/uv" ] || { "$PY" -m venv "$ROOT/uv" && "$ROOT/uv/bin/python" -m pip -q install uv; }
UV="$ROOT/uv/bin/uv"
export UV_PYTHON_DOWNLOADS=never UV_CACHE_DIR="$ROOT/resolve-cache"
rm -rf "$UV_CACHE_DIR"
for extras in vllm vllm,test; do
    out="$ROOT/resolved-${extras/,/-}.txt"
    args=()
    for e in ${extras//,/ }; do args+=(--extra "$e"); done
    "$UV" pip compile -q pyproject.toml "${args[@]}" --python-platform x86_64-manylinux_2_28 \
        --python-version "${PYTHON_VERSION:-3.12}" --no-header --no-annotate -o "$out"
    echo "== selfexplain[$extras] on Linux x86_64 + CUDA, Python ${PYTHON_VERSION:-3.12}: $(grep -c '==' "$out") packages"
    grep -iE '^(vllm|torch|transformers|tokenizers|accelerate|peft|datasets|gguf|safetensors|numpy|scipy|xformers|flashinfer-python|triton|nvidia-cuda-runtime[a-z0-9-]*|nvidia-cudnn[a-z0-9-]*|pytest|playwright|build)==' "$out" | sed 's/^/  /'
done
echo "== fetched for these resolutions (metadata only): $(du -sh "$UV_CACHE_DIR" | cut -f1)"
