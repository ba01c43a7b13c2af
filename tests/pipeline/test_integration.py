"""End to end on real embedded models: the default model's protocol (kill and resume: test_faults.py)."""

import pytest

import fault_runner  # the CLI in a process of its own
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


def test_default_model_end_to_end(tmp_path, default_model):
    from selfexplain.backends.hf import HFBackend

    labels = get_task("tweets").labels
    be = HFBackend.from_loaded(*default_model)
    one = evaluate(limit=4, chunk_size=4, output_path=tmp_path, backend_instance=be)
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
    multi = evaluate(limit=2, chunk_size=2, output_path=tmp_path, width="multi", styles=["attribution", "counterfactual"],
                     backend_instance=be)
    for r in multi.records:
        _check_record(r, labels)


def test_default_model_classifies_above_chance(default_model):
    """Label scoring alone on 40 held-out tweets: the default model must beat chance clearly."""
    from selfexplain.backends.hf import HFBackend
    from selfexplain.evaluation import classify

    task = get_task("tweets")
    exs = sample_examples(task, 40, 0, None, False, "test")
    preds = classify(HFBackend.from_loaded(*default_model), task, [(e.text, None) for e in exs])
    acc = sum(p.label == e.label for p, e in zip(preds, exs)) / len(exs)
    assert acc >= 0.65, acc


def test_cli_errors_are_one_line(tmp_path):
    r = fault_runner.run(["evaluate", "--task", "snli", "--data", str(tmp_path / "missing.jsonl"), "--model",
                          "embedded:smollm2-135m"], timeout=300)
    assert r.returncode == 2
    assert "missing.jsonl: file not found" in r.stderr and "Traceback" not in r.stderr
    r = fault_runner.run(["evaluate", "--task", "imdb"], timeout=300)
    assert r.returncode == 2 and "unknown task 'imdb'" in r.stderr
    r = fault_runner.run(["evaluate", "--style", "saliency"], timeout=300)
    assert r.returncode == 2 and "unknown style 'saliency'" in r.stderr
