"""Faults at the edge, with real processes: kills at exact points, a full disk, two writers, damaged files.

Every faulty run is the real CLI in a process of its own (see ``fault_runner.py`` for how the moment of a kill
or a file-size limit is arranged); the check is always against an uninterrupted run of the same command.
"""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

import fault_runner
from selfexplain.errors import UserError

# The smallest model that shows each fault: what is under test is where a run stops and how it resumes,
# which the tiny stand-in's records show as well as a real model's, at a fraction of the compute.
EVAL = ["evaluate", "--model", "standin:tulu-tiny", "--limit", "6", "--chunk-size", "2",
        "--style", "attribution", "--style", "redaction"]  # 3 chunks of 4 records


def _cli(*args, fault=None, timeout=600, wait=True, env=None):
    """The real CLI in a process of its own (forked from a warm server: see fault_runner.py)."""
    if not wait:
        return fault_runner.start(list(args), fault, env)
    return fault_runner.run(list(args), fault, env, timeout=timeout)


def _one_line_error(r):
    assert "Traceback" not in r.stderr, r.stderr
    # A progress bar may leave its last line open ("25%|...|" then the error): cut at "error: " too.
    lines = ["error: " + part for part in r.stderr.split("error: ")[1:]]
    lines = [line.splitlines()[0] for line in lines]
    assert len(lines) == 1, r.stderr
    return lines[0]


def _run_dir(out: Path) -> Path:
    found = list(out.glob("evaluate-*"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    r = _cli(*EVAL, "--output-path", str(out))
    assert r.returncode == 0, r.stderr
    run = _run_dir(out)
    assert len((run / "records.jsonl").read_text().splitlines()) == 12
    return run


def _same_as_reference(run: Path, reference: Path):
    assert (run / "records.jsonl").read_bytes() == (reference / "records.jsonl").read_bytes()
    assert (run / "summary.json").read_bytes() == (reference / "summary.json").read_bytes()


def _fails_in_one_line(out: Path, fault: str | None = None) -> str:
    """EVAL into ``out`` (with ``fault``) exits 2 with one error line; returns the line."""
    r = _cli(*EVAL, "--output-path", str(out), fault=fault)
    assert r.returncode == 2
    return _one_line_error(r)


def _resumes_to_reference(out: Path, run: Path, reference: Path):
    """EVAL into ``out`` again, without a fault, finishes ``run`` as the uninterrupted reference."""
    again = _cli(*EVAL, "--output-path", str(out))
    assert again.returncode == 0, again.stderr
    _same_as_reference(run, reference)
    assert not list(run.glob("*.tmp")) and not (run / ".lock").exists()


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill-after-append:2", "kill-mid-append:2",
                                   "kill-writing:summary.json"])
def test_killed_evaluate_resumes_to_identical_results(tmp_path, reference, fault):
    r = _cli(*EVAL, "--output-path", str(tmp_path), fault=fault)
    assert r.returncode == -9, r.stderr
    run = _run_dir(tmp_path)
    assert not (run / "summary.json").exists()
    _resumes_to_reference(tmp_path, run, reference)


@pytest.mark.embedded
@pytest.mark.slow
def test_disk_full_while_appending_keeps_complete_chunks(tmp_path, reference):
    one_chunk = len("".join((reference / "records.jsonl").read_text().splitlines(keepends=True)[:4]))
    line = _fails_in_one_line(tmp_path, f"fsize:{one_chunk + 1000}")
    assert "records.jsonl: disk full (File too large) while appending records; the 1 complete chunk(s)" in line
    assert "run the same command again to resume" in line
    run = _run_dir(tmp_path)
    kept = (run / "records.jsonl").read_text()
    assert kept == (reference / "records.jsonl").read_text()[: len(kept)] and len(kept.splitlines()) == 4
    _resumes_to_reference(tmp_path, run, reference)


@pytest.mark.embedded
@pytest.mark.slow
def test_disk_full_while_writing_the_summary(tmp_path, reference):
    run = tmp_path / reference.name
    shutil.copytree(reference, run)
    (run / "summary.json").unlink()
    (run / "summary.md").unlink()
    line = _fails_in_one_line(tmp_path, "fsize:2000")  # summary.json is ~4 kB
    assert "summary.json: disk full (File too large); the records are complete and kept" in line
    assert not (run / "summary.json").exists() and not list(run.glob("*.tmp"))
    _resumes_to_reference(tmp_path, run, reference)


@pytest.mark.embedded
@pytest.mark.slow
def test_damaged_config_json_is_one_line(tmp_path, reference):
    run = tmp_path / reference.name
    shutil.copytree(reference, run)
    (run / "config.json").write_text((reference / "config.json").read_text()[:-20])
    line = _fails_in_one_line(tmp_path)
    assert f"{run / 'config.json'}: not valid JSON (line " in line


@pytest.mark.embedded
@pytest.mark.slow
def test_two_writers_on_one_run_folder(tmp_path, reference):
    """A holds the run folder (stalled after its first chunk); B fails at once naming A; C --wait waits for A.

    A holds until the test releases it, once C has said it waits: no fixed stall to outlast two process starts."""
    release = tmp_path / "release"
    a = _cli(*EVAL, "--output-path", str(tmp_path), fault=f"stall-after-append:1:{release}", wait=False)
    deadline = time.time() + 120
    while not list(tmp_path.glob("evaluate-*/records.jsonl")) and time.time() < deadline:
        time.sleep(0.2)
    b = _cli(*EVAL, "--output-path", str(tmp_path))
    assert b.returncode == 75
    line = _one_line_error(b)
    assert f"{_run_dir(tmp_path)}: this run folder is in use by pid {a.pid} " in line and "--wait" in line
    c = _cli(*EVAL, "--output-path", str(tmp_path), "--wait", wait=False)
    deadline = time.time() + 300
    while "waiting for it" not in c.stderr_path.read_text() and c.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    release.touch()
    c_out, c_err = c.communicate(timeout=600)
    a_out, a_err = a.communicate(timeout=600)
    assert a.returncode == 0, a_err
    assert c.returncode == 0, c_err
    assert "in use by pid" in c_err and "waiting for it" in c_err
    _same_as_reference(_run_dir(tmp_path), reference)

    def table(out):
        return out[out.index("tweets (one-word)"):out.index("records:")]
    assert table(c_out) == table(a_out)


TRAIN = ["train", "--model", "standin:tulu-tiny", "--mix", "0", "--max-steps", "4", "--save-steps", "1",
         "--batch-size", "2", "--lora-r", "4"]


@pytest.fixture(scope="module")
def chats(tmp_path_factory):
    path = tmp_path_factory.mktemp("chats") / "chats.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Is {i} even?"},
                          {"role": "assistant", "content": "Yes" if i % 2 == 0 else "No"}]} for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    found = list(out.glob("train-*/adapter/adapter_model.safetensors"))
    assert len(found) == 1, found
    return load_file(found[0])


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, chats):
    out = tmp_path_factory.mktemp("trained")
    r = _cli(*TRAIN, "--data", chats, "--output-path", str(out))
    assert r.returncode == 0, r.stderr
    return _adapter(out)


@pytest.mark.embedded
@pytest.mark.slow
def test_training_is_the_same_in_every_process(tmp_path, chats, trained):
    """The LoRA matrices are seeded: the same command gives the same adapter (it gave another each time)."""
    r = _cli(*TRAIN, "--data", chats, "--output-path", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert _same_weights(_adapter(tmp_path), trained)


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill-after-checkpoint:2", "kill-mid-checkpoint:3", "fsize:20000"])
def test_interrupted_training_resumes_to_the_same_adapter(tmp_path, chats, trained, fault):
    """Killed between checkpoints, killed while saving one, or out of space: the resumed adapter equals
    the uninterrupted one, bit for bit (the checkpoint holds the optimizer, scheduler and RNG states)."""
    r = _cli(*TRAIN, "--data", chats, "--output-path", str(tmp_path), fault=fault)
    if fault.startswith("fsize"):
        assert r.returncode == 2
        line = _one_line_error(r)
        assert "disk full" in line and "training resumes from the start" in line
    else:
        assert r.returncode == -9
    assert not list(tmp_path.glob("train-*/adapter"))
    again = _cli(*TRAIN, "--data", chats, "--output-path", str(tmp_path))
    assert again.returncode == 0, again.stderr
    summary = json.loads(next(tmp_path.glob("train-*/train_summary.json")).read_text())
    expected = {"kill-after-checkpoint:2": "checkpoint-2", "kill-mid-checkpoint:3": "checkpoint-2", "fsize:20000": None}
    assert (Path(summary["resumed_from"]).name if summary["resumed_from"] else None) == expected[fault]
    assert _same_weights(_adapter(tmp_path), trained)


SMOKE = ["reproduce", "--preset", "cpu-small", "--smoke", "--no-report"]


def _study_records(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("records.jsonl"))}


@pytest.mark.embedded
@pytest.mark.slow
def test_killed_study_resumes_to_identical_results(tmp_path, cpu_small_smoke):
    """reproduce killed in the middle of a stage's chunks, and again just as a training stage finished
    (before study.json knew): the finished study equals an uninterrupted one, record for record."""
    out = tmp_path / "killed"
    for fault in ("kill-after-append:5", "kill-stage:train|redaction"):
        k = _cli(*SMOKE, "--output-path", str(out), fault=fault)
        assert k.returncode == -9, k.stderr
    again = _cli(*SMOKE, "--output-path", str(out))
    assert again.returncode == 0, again.stderr
    a, b = cpu_small_smoke, out / "cpu-small-smoke"
    assert _study_records(a) == _study_records(b) and len(_study_records(a)) >= 7

    def cells(root):
        return sorted((c["condition"], c["train_task"], c["eval_task"], c["width"], Path(c["run_dir"]).name)
                      for c in json.loads((root / "study.json").read_text())["cells"])
    assert cells(a) == cells(b)
    adapters = sorted(a.glob("runs/train-*/adapter/adapter_model.safetensors"))
    assert len({p.read_bytes() for p in adapters}) == 4  # the smoke's two steps train each condition apart
    for adapter in adapters:
        assert adapter.read_bytes() == (b / adapter.relative_to(a)).read_bytes()


@pytest.mark.embedded
@pytest.mark.slow
def test_second_reproduce_of_one_study_is_refused(tmp_path):
    holder = _cli(*SMOKE, "--output-path", str(tmp_path), fault="stall-after-append:1:20", wait=False)
    deadline = time.time() + 120
    while not list(tmp_path.glob("cpu-small-smoke/runs/*/records.jsonl")) and time.time() < deadline:
        time.sleep(0.2)
    r = _cli(*SMOKE, "--output-path", str(tmp_path))
    assert r.returncode == 75
    assert f"cpu-small-smoke: this study is in use by pid {holder.pid} " in _one_line_error(r)
    holder.kill()
    holder.communicate()


def test_cheap_checks_come_before_the_model_loads(tmp_path, monkeypatch):
    from selfexplain import api

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before a cheap check")

    monkeypatch.setattr("selfexplain.pipeline.runs.load_backend", no_model)  # what every command loads with
    a_file = tmp_path / "file"
    a_file.write_text("x")
    bad = [
        ({"output_path": a_file}, "--output-path names a file"),
        ({"chunk_size": 0}, "--chunk-size must be a positive whole number"),
        ({"width": "three"}, "unknown width"),
        ({"limit": 0}, "--limit must be positive"),
        ({"styles": ["saliency"]}, "unknown style"),
        ({"task": "imdb"}, "unknown task"),
    ]
    for kwargs, message in bad:
        with pytest.raises(UserError, match=message):
            api.evaluate(**{"output_path": tmp_path / "runs", **kwargs})
    for fn in (api.attribute, api.construct):
        with pytest.raises(UserError, match="--chunk-size must be a positive whole number"):
            fn(chunk_size=0, output_path=tmp_path / "runs")
        with pytest.raises(UserError, match="--output-path names a file"):
            fn(output_path=a_file)


def test_cheap_checks_of_reproduce_come_before_the_model_loads(tmp_path, monkeypatch):
    from selfexplain import backends
    from selfexplain.experiments import Experiment, reproduce

    monkeypatch.setattr(backends, "load_backend", lambda *a, **k: pytest.fail("model loaded"))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    exp = Experiment(name="s", conditions=["none"], evaluate=[{"task": "tweets"}])
    with pytest.raises(UserError, match="--output-path names a file"):
        reproduce(exp, a_file)
    exp = Experiment(name="s", train_tasks=["vitaminc"], evaluate=[{"task": "tweets"}])
    with pytest.raises(UserError, match="vitaminc is evaluation-only"):
        reproduce(exp, tmp_path)


def test_damaged_study_json_is_one_line(tmp_path):
    from selfexplain.reports import write_study_report

    (tmp_path / "study.json").write_text('{"experiment": {"name": "x"}, "cells": [}')
    with pytest.raises(UserError) as e:
        write_study_report(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'study.json'}: not valid JSON (line 1, column 41")


def test_damaged_records_line_is_one_line(tmp_path):
    from selfexplain.reports.study import read_records

    (tmp_path / "records.jsonl").write_text('{"chunk": 0}\n{"chunk": 0, oops}\n')
    with pytest.raises(UserError, match=r"records.jsonl: line 2 is not a valid record"):
        read_records(tmp_path)


@pytest.mark.embedded
@pytest.mark.slow
def test_two_processes_needing_one_conversion(tmp_path):
    """A fresh cache, two processes that need the same embedded model: one joins and converts it, the
    other waits and then uses that conversion (before, both converted and one's rmtree could delete
    the other's freshly converted folder while it loaded).  The model is a tiny GGUF (a one-layer Llama with
    Llama-2's vocabulary) packaged as the embedded models are: its conversion reads the same 32k-entry
    vocabulary, a few seconds in which the second process arrives."""
    from llama_standin import make_tiny_gguf
    from test_gguf import skip_unless_conversion_supported

    skip_unless_conversion_supported()
    package = tmp_path / "package"
    package.mkdir()
    gguf = make_tiny_gguf(package / "tiny.gguf")
    env = {**os.environ, "SELFEXPLAIN_CACHE": str(tmp_path / "cache")}

    procs = [fault_runner.start([str(gguf)], env=env, target="fault_runner:resolved_embedded") for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    folder = Path(paths.pop())
    assert (folder / "config.json").exists() and (folder / "selfexplain-source.txt").exists()
    waited = [o[1] for o in outs if "in use by pid" in o[1] and "waiting for it" in o[1]]
    assert len(waited) == 1, [o[1][-500:] for o in outs]
    assert not list(tmp_path.rglob(".*.lock")) and not list((tmp_path / "cache" / "models").glob("tmp*"))


def test_disk_full_while_writing_the_report(tmp_path):
    """The report's largest file (report.html) meets a full disk: one line, the study untouched, no
    temporary file left; with space again the same command writes it."""
    from study_factory import make_study

    root = make_study(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    r = _cli("report", str(root), fault="fsize:200000", timeout=300)
    assert r.returncode == 2
    line = _one_line_error(r)
    assert "report.html: disk full (File too large); the study's runs are untouched" in line
    assert not list((root / "report").glob("*.tmp")) and not (root / "report" / "report.html").exists()
    assert all(p.read_bytes() == b for p, b in before.items())
    again = _cli("report", str(root))
    assert again.returncode == 0, again.stderr
    assert (root / "report" / "report.html").stat().st_size > 200_000
