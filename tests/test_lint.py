"""Lint, format and types of src/, as pyproject.toml configures them: a change that breaks one fails the suite."""

import subprocess
import sys

import pytest

from locations import ROOT


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "src"), ("ruff", "format", "--check", "src"), ("mypy",)],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_src_is_clean(command):
    r = _run(*command)
    assert r.returncode == 0, f"{' '.join(command)}:\n{r.stdout}{r.stderr}"
