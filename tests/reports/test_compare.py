"""Comparing two runs of the same samples: agreement figures and every difference named."""

from pathlib import Path

import pytest

from selfexplain.reports.compare import compare_runs


def _rec(sid, style, pred, probs, text):
    return {"sample_id": sid, "style": style, "prediction": pred, "label_probs": probs, "raw_explanation": text}


def test_identical_runs_agree_fully():
    a = [_rec("1", "attribution", "Positive", {"Positive": 0.8, "Negative": 0.2}, "Answer: love")]
    r = compare_runs(a, [dict(x) for x in a])
    assert (r.prediction_agreement, r.explanation_agreement, r.max_prob_diff, r.differences) == (1.0, 1.0, 0.0, [])


def test_every_difference_is_listed_with_a_reason():
    a = [_rec("1", "attribution", "Positive", {"Positive": 0.5004, "Negative": 0.4996}, "Answer: love"),
         _rec("2", "attribution", "Negative", {"Positive": 0.1, "Negative": 0.9}, "Answer: hate it"),
         _rec("2", "redaction", "Negative", {"Positive": 0.1, "Negative": 0.9}, "Answer: I [REDACTED] it")]
    b = [_rec("1", "attribution", "Negative", {"Positive": 0.4999, "Negative": 0.5001}, "Answer: rain"),
         _rec("2", "attribution", "Negative", {"Positive": 0.1, "Negative": 0.9}, "Answer: hate"),
         _rec("2", "redaction", "Negative", {"Positive": 0.1, "Negative": 0.9}, "Answer: I [REDACTED] it")]
    r = compare_runs(a, b)
    assert r.n_samples == 2 and r.prediction_agreement == 0.5 and r.explanation_agreement == pytest.approx(1 / 3)
    reasons = {(d.sample_id, d.style): d.reason for d in r.differences}
    assert "near tie" in reasons[("1", None)]
    assert "different prediction" in reasons[("1", "attribution")]
    assert "after 12 identical characters" in reasons[("2", "attribution")]
    assert "| 2 | attribution | explanation text |" in r.markdown()


def test_runs_of_different_samples_are_refused():
    a = [_rec("1", "attribution", "Positive", {"Positive": 1.0}, "x")]
    with pytest.raises(ValueError, match="different samples"):
        compare_runs(a, [_rec("2", "attribution", "Positive", {"Positive": 1.0}, "x")])


def test_the_command_refuses_incomplete_runs_and_names_damaged_lines(tmp_path):
    """A torn line made compare say the runs hold "different samples"; an unfinished run passed as complete."""
    import json

    from study_factory import make_study
    from typer.testing import CliRunner

    from selfexplain.cli import app

    root = make_study(tmp_path / "s")
    a, b = (json.loads((root / "study.json").read_text())["cells"][i]["run_dir"] for i in (0, 3))
    run = CliRunner()
    assert run.invoke(app, ["compare", a, a]).exit_code == 0
    records = tmp_path / "s" / "runs" / Path(b).name / "records.jsonl"
    records.write_bytes(records.read_bytes()[:-10])
    res = run.invoke(app, ["compare", a, b])
    assert res.exit_code == 2 and "the last line is cut short" in res.output and "different samples" not in res.output
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join(lines[:5] + ["{not json\n"] + lines[6:-1]))  # a damaged middle line
    res = run.invoke(app, ["compare", a, b, "--allow-incomplete"])
    assert res.exit_code == 2 and f"{records}: line 6 is not a valid record" in res.output
