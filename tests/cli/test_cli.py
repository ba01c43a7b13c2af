"""The command line: every bad input a user can fix is one line and a non-zero exit, help texts keep their
bracketed words, and printed commands can be pasted as they are."""

import re
import shlex
from pathlib import Path

import click
import pytest
import typer
import yaml
from typer.testing import CliRunner

from locations import FIXTURES
from selfexplain.cli import app
from selfexplain.errors import UserError

S140 = ["--task", "sentiment140", "--data", str(FIXTURES / "sentiment140.csv"), "--split", "all", "--limit", "2"]


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (arguments, what the one line must say).  Built in ``tmp``."""
    (tmp / "folder").mkdir()
    (tmp / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (tmp / "list-prompts.yaml").write_text(yaml.safe_dump(
        {"name": "lp", "labels": ["a", "b"], "source": {"format": "csv", "path": "x.csv"},
         "prompts": {"from_task": ["tweets"]}}))
    (tmp / "no-weights").mkdir()
    (tmp / "no-weights" / "config.json").write_text('{"model_type": "llama"}')
    (tmp / "bad-config").mkdir()
    (tmp / "bad-config" / "config.json").write_text("{bad")
    (tmp / "no-tokenizer").mkdir()
    (tmp / "no-tokenizer" / "config.json").write_text('{"model_type": "llama"}')
    (tmp / "no-tokenizer" / "model.safetensors").write_bytes(b"")
    (tmp / "fake.gguf").write_text("not a gguf file")
    (tmp / "latin1.jsonl").write_bytes(b'{"messages": "caf\xe9"}\n')
    (tmp / "exp.yaml").write_text(yaml.safe_dump({"name": "../../escaped", "evaluate": [{"task": "tweets"}]}))
    return {
        "task file not UTF-8": (["evaluate", "--task", str(tmp / "latin1.yaml")], "not UTF-8 text"),
        "task is a folder": (["evaluate", "--task", str(tmp / "folder")], "a folder, not a task .yaml file"),
        "data is a folder": (["evaluate", "--task", "sentiment140", "--data", str(tmp / "folder")], "a folder; --data"),
        "from_task given a list": (["evaluate", "--task", str(tmp / "list-prompts.yaml")],
                                   "field 'prompts.from_task': the name of one task"),
        "model folder without weights": (["evaluate", *S140, "--model", str(tmp / "no-weights")], "no weights"),
        "model folder without tokenizer": (["evaluate", *S140, "--model", str(tmp / "no-tokenizer")], "no tokenizer"),
        "model config.json invalid": (["evaluate", *S140, "--model", str(tmp / "bad-config")], "not valid JSON"),
        "gguf that is not GGUF": (["evaluate", *S140, "--model", str(tmp / "fake.gguf")], "not a GGUF file"),
        "train data is a folder": (["train", "--data", str(tmp / "folder")], "a folder; --data takes a JSONL"),
        "train data not UTF-8": (["train", "--data", str(tmp / "latin1.jsonl")], "line 1: not UTF-8 text"),
        "experiment name escapes": (["reproduce", "--preset", str(tmp / "exp.yaml")], "field 'name'"),
    }


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    return tmp, _bad_inputs(tmp)


CASES = ["task file not UTF-8", "task is a folder", "data is a folder", "from_task given a list",
         "model folder without weights", "model folder without tokenizer", "model config.json invalid",
         "gguf that is not GGUF", "train data is a folder", "train data not UTF-8", "experiment name escapes"]


def test_the_matrix_covers_every_case(bad):
    assert sorted(bad[1]) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_writes_nothing(bad, case, tmp_path):
    root, cases = bad
    args, says = cases[case]
    out = tmp_path / "out"
    before = sorted(p.name for p in root.iterdir())
    res = CliRunner().invoke(app, [*args, "--output-path", str(out)])
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit)  # handled: no traceback
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and says in lines[-1], res.output
    assert not out.exists() or not any(out.rglob("*"))  # nothing written
    assert sorted(p.name for p in root.iterdir()) == before  # nor beside the inputs
    assert not (root.parent / "escaped").exists()


@pytest.mark.parametrize("args", [["attribute", "--chunk-size", "-1"], ["construct", "--chunk-size", "-1"],
                                  ["evaluate", "--chunk-size", "0"], ["evaluate", "--batch-size", "0"],
                                  ["evaluate", "--limit", "0"],
                                  ["train", "--data", "x.jsonl", "--lr", "0"], ["train", "--data", "x", "--max-steps", "-2"]])
def test_impossible_numbers_are_refused_before_anything_loads(args, tmp_path):
    """attribute --batch-size -1 exited 0 with no records; construct wrote three empty training files."""
    res = CliRunner().invoke(app, [*args, "--output-path", str(tmp_path / "out")])
    assert res.exit_code == 2 and "Invalid value for" in res.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["evaluate", "attribute", "construct"])
def test_the_former_batch_size_still_sets_the_chunk_size_and_says_so(command, monkeypatch):
    """--batch-size meant the chunk on these commands and the per-device batch on train; the chunk is --chunk-size
    now, and the former spelling keeps working with one line that says so."""
    from selfexplain import api

    seen = {}

    def stop(**kwargs):
        seen.update(kwargs)
        raise UserError("stopped before any model")

    monkeypatch.setattr(api, command, stop)
    res = CliRunner().invoke(app, [command, "--batch-size", "3"])
    assert res.exit_code == 2 and seen["chunk_size"] == 3 and "batch_size" not in seen
    assert "--batch-size is now --chunk-size here" in res.output
    res = CliRunner().invoke(app, [command, "--chunk-size", "5"])
    assert seen["chunk_size"] == 5 and "--batch-size is now" not in res.output


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


BRACKETED = re.compile(r"[\w.'-]*\[[^\]\s]+\][\w.'-]*")


@pytest.mark.parametrize("path,cmd", list(_commands(typer.main.get_command(app))), ids=lambda v: " ".join(v)
                         if isinstance(v, tuple) else "")
def test_help_keeps_every_bracketed_word(path, cmd):
    """rich markup ate bracketed words: `pip install 'selfexplain'` where selfexplain[vllm] was meant."""
    out = CliRunner().invoke(app, [*path, "--help"], terminal_width=100).output
    texts = [cmd.help or "", cmd.epilog or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    for word in (w for t in texts for w in BRACKETED.findall(t)):
        assert word in out, (word, out)


def test_printed_commands_can_be_pasted(tmp_path, monkeypatch):
    """`use it: selfexplain evaluate --adapter PATH` was wrapped before a long path (always when piped)."""
    from selfexplain import api

    adapter = tmp_path / ("a long folder name " * 12).strip() / "adapter"

    def fake_train(**kw):
        return api.TrainResult(adapter.parent, adapter, {"steps": 2, "n_task": 1, "n_replay": 0, "losses": [1.0, 0.5],
                                                         "train_samples_per_second": 1.0})

    monkeypatch.setattr(api, "train", fake_train)
    res = CliRunner().invoke(app, ["train", "--data", "x.jsonl"], terminal_width=80)
    assert res.exit_code == 0, res.output
    line = next(l for l in res.output.splitlines() if l.startswith("use it: "))
    assert shlex.split(line[len("use it: "):]) == ["selfexplain", "evaluate", "--adapter", str(adapter)]


def test_help_lists_every_backend_and_style_from_the_registries():
    """`--backend` help once said "hf (transformers) or vllm": the openai backend was missing from it."""
    from selfexplain.backends import BACKENDS
    from selfexplain.styles import style_names

    text = " ".join(CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=200).output.split())
    assert all(f"{name} ({BACKENDS.description(name)})" in text for name in ["hf", "vllm", "openai"])
    assert f"{', '.join(style_names())} or all" in text
    from selfexplain.tasks import task_names

    assert f"A registered task ({', '.join(task_names())};" in text
    reproduce = " ".join(CliRunner().invoke(app, ["reproduce", "--help"], terminal_width=200).output.split())
    assert f"backend ({', '.join(BACKENDS.names())})" in reproduce and "openai" in reproduce


@pytest.mark.parametrize("args,message", [
    (["evaluate", "--data", "{bad}"], "row 2: missing column 'text'"),
    (["evaluate", "--style", "haiku"], "haiku"),
    (["evaluate", "--width", "two"], "unknown width 'two'"),
    (["attribute", "--data", "{bad}"], "row 2: missing column 'text'"),
    (["construct", "--data", "{bad}"], "row 2: missing column 'text'"),
    (["evaluate", "--task", "imdb"], "known tasks"),
])
def test_inputs_are_checked_before_any_model_loads(args, message, tmp_path, monkeypatch):
    """A bad --data file failed only after "loading embedded (... about a minute)" was printed."""

    bad = tmp_path / "bad.csv"
    bad.write_text("txt,label\nhello,Positive\n")

    def no_model(*a, **k):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr("selfexplain.pipeline.runs.load_backend", no_model)  # what every command loads with
    res = CliRunner().invoke(app, [*(a.format(bad=bad) for a in args), "--output-path", str(tmp_path / "out")])
    assert res.exit_code != 0 and not isinstance(res.exception, AssertionError), res.output
    assert message in res.output and "loading" not in res.output
