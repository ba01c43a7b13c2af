"""Shared by the study tests: a one-cell study on the keyword stand-in backend."""


import pytest
import yaml

from locations import FIXTURES
from selfexplain.backends import BACKENDS, register_backend
from selfexplain.experiments import load_experiment


@pytest.fixture
def keyword_study(tmp_path, keyword_backend):
    register_backend("keyword")(lambda model, **kw: keyword_backend)
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump({
        "name": "kw", "model": "keyword-model", "backend": "keyword", "conditions": ["none"], "chunk_size": 4,
        "evaluate": [{"task": "sentiment140", "widths": ["one", "multi"], "limit": 8, "split": "all",
                      "data": str(FIXTURES / "sentiment140.csv")}],
    }))
    yield load_experiment(str(f)), tmp_path / "studies"
    BACKENDS.remove("keyword")  # a test's backend does not outlive it (help texts list the registry)
