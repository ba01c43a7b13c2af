"""End to end on real embedded models: the default model's protocol, and kill/resume."""

import os
import signal
import subprocess
import sys
import time

import pytest

from selfexplain.api import evaluate, sample_examples
from selfexplain.tasks import get_task

pytestmark = [pytest.mark.slow, pytest.mark.embedded]


def _check_record(r, labels):
    assert r["prediction"] in labels and abs(sum(r["label_probs"].values()) - 1) < 1e-6
    if r["valid"]:
        assert r["edited_input"] and r["new_prediction"] in labels
        assert r["faithful"] == (r["new_prediction"] != r["prediction"])
        assert r["n"] >= 1
    else:
        assert r["reason"] and r["faithful"] is None and r["new_prediction"] is None


def test_default_model_end_to_end(tmp_path):
    labels = get_task("tweets").labels
    one = evaluate(limit=4, batch_size=4, output_path=tmp_path)
    assert len(one.records) == 12
    for r in one.records:
        _check_record(r, labels)
        assert r["width"] == "one"
        if r["valid"]:
            assert r["n"] == 1
    assert {s.style for s in one.summary.styles} == {"attribution", "redaction", "counterfactual"}
    # Issue 14's measures on a real run: every valid explanation has a shift and a random baseline's.
    for s in one.summary.styles:
        m = s.measures
        assert m["shift"]["n"] == s.n_valid and m["vs_random"]["pairs"] == s.n_random
        assert m["vs_random"]["verdict"] in ("beats chance", "does not", "undetermined")
    assert all(r["random_label_probs"] is not None for r in one.records if r["valid"])
    multi = evaluate(limit=2, batch_size=2, output_path=tmp_path, width="multi", styles=["attribution", "counterfactual"])
    for r in multi.records:
        _check_record(r, labels)


def test_default_model_classifies_above_chance():
    """Label scoring alone on 40 held-out tweets: the default model must beat chance clearly."""
    from selfexplain.backends.hf import HFBackend
    from selfexplain.evaluation import classify

    task = get_task("tweets")
    exs = sample_examples(task, 40, 0, None, False, "test")
    preds = classify(HFBackend("embedded"), task, [(e.text, None) for e in exs])
    acc = sum(p.label == e.label for p, e in zip(preds, exs)) / len(exs)
    assert acc >= 0.65, acc


def _cli(out, *extra):
    return [sys.executable, "-m", "selfexplain.cli", "evaluate", "--model", "embedded:smollm2-135m",
            "--limit", "8", "--batch-size", "2", "--output-path", str(out), *extra]


def test_kill_and_resume_gives_identical_records(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ref = subprocess.run(_cli(tmp_path / "ref"), env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    ref_records = next((tmp_path / "ref").glob("*/records.jsonl")).read_text()
    assert len(ref_records.splitlines()) == 8 * 3

    proc = subprocess.Popen(_cli(tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    records = None
    while time.time() < deadline:
        found = list((tmp_path / "killed").glob("*/records.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 6:  # one chunk of 2 samples x 3 styles
            records = found[0]
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert records is not None, "the run never wrote its first chunk"
    partial = len(records.read_text().splitlines())
    assert partial < 24, "killed too late to test resumption"

    again = subprocess.run(_cli(tmp_path / "killed"), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert records.read_text() == ref_records


def test_cli_errors_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "selfexplain.cli", "evaluate", "--task", "snli", "--data",
                        str(tmp_path / "missing.jsonl"), "--model", "embedded:smollm2-135m"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "missing.jsonl: file not found" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "selfexplain.cli", "evaluate", "--task", "imdb"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unknown task 'imdb'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "selfexplain.cli", "evaluate", "--style", "saliency"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unknown style 'saliency'" in r.stderr
