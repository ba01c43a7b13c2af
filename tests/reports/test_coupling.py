"""Coupling: a trained model's explanations judged against itself and against its data's source model."""

from pathlib import Path

import numpy as np
import pytest
from study_factory import add_variant, make_study

from selfexplain.reports import all_tables
from selfexplain.reports.coupling import coupling_table
from selfexplain.reports.reading import reading_table
from selfexplain.reports.study import load_study
from selfexplain.reports.verdicts import HOLDS, UNDETERMINED

SOURCE = "embedded:smollm2-135m"


def _coupled_study(tmp_path: Path, verdict) -> Path:
    """A study with 'coupled': w/ attribution's records, each valid one also judged by SOURCE as ``verdict(r)``."""
    root = make_study(tmp_path / "s", n=60)

    def judged(r):
        r["reference"] = {"model": SOURCE, "prediction": r["prediction"], "new_prediction": None,
                          "faithful": verdict(r) if r["valid"] else None, "shift": None}

    add_variant(root, "coupled", {"data": "attribution", "source_model": SOURCE, "note": ""}, judged)
    return root


def test_table_recomputes_both_verdicts_from_the_records(tmp_path):
    study = load_study(_coupled_study(tmp_path, lambda r: False))  # the source never changes its label
    t = coupling_table(study)
    assert {(r["task"], r["width"], r["style"]) for r in t.rows} == {
        (task, w, s) for task, w in (("tweets", "one"), ("tweets", "multi"), ("vitaminc", "one"))
        for s in ("attribution", "redaction", "counterfactual")}
    row = next(r for r in t.rows if (r["task"], r["width"], r["style"]) == ("tweets", "one", "attribution"))
    recs = [r for r in study.cell("coupled", "tweets", "tweets", "one").records if r["style"] == "attribution"]
    valid = [r for r in recs if r["valid"]]
    assert row["n_valid"] == len(valid) and row["source model"] == SOURCE
    assert row["self"] == pytest.approx(np.mean([r["faithful"] for r in valid]))
    assert row["source"] == 0 and row["both"] == 0
    assert row["diff"] == pytest.approx(row["self"]) and row["diff_low"] > 0
    # Only a study with such a condition gets the table.
    assert "coupling" in [t.name for t in all_tables(study)]
    assert "coupling" not in [t.name for t in all_tables(load_study(make_study(tmp_path / "plain", n=30)))]


def test_reading_judges_itself_over_source_in_the_trained_style(tmp_path):
    claim = f"w/ coupled (beyond the paper): more faithful to itself than to {SOURCE}, attribution, one-word, tweets"
    never = {r["claim"]: r for r in reading_table(load_study(_coupled_study(tmp_path / "a", lambda r: False))).rows}
    assert never[claim]["verdict"] == HOLDS
    # The trained style only: no coupling row for redaction.
    assert not any(c.startswith("w/ coupled (beyond") and "redaction" in c for c in never)
    # The source agrees with the model on every explanation: no difference, but too few samples to detect a rise of
    # the declared margin, so no "does not hold".
    same = {r["claim"]: r for r in reading_table(load_study(_coupled_study(tmp_path / "b", lambda r: r["faithful"]))).rows}
    assert same[claim]["verdict"] == UNDETERMINED and same[claim]["diff_method"] == "exact"
    assert "underpowered" in same[claim]["why"]


def test_a_source_that_answers_one_label_is_named(tmp_path):
    """cpu-medium's source, SmolLM2, answers 'Positive' to every tweet: no edit flips it, so "more faithful to
    itself than to the source" holds whatever the explanations are; the table and the reading say so."""
    def positive_source(r):
        r["reference"] = {"model": SOURCE, "prediction": "Positive" if r["task"] == "tweets" else r["prediction"],
                          "new_prediction": None, "faithful": False if r["valid"] else None, "shift": None}

    root = make_study(tmp_path / "s", n=60)
    add_variant(root, "coupled", {"data": "attribution", "source_model": SOURCE, "note": ""}, positive_source)
    study = load_study(root)
    rows = {(r["task"], r["width"], r["style"]): r for r in coupling_table(study).rows}
    own = study.cell("coupled", "tweets", "tweets", "one").top_label()
    assert own[1] < 57  # the synthetic model itself reads its inputs
    assert rows["tweets", "one", "attribution"]["most frequent answer (itself / source)"] == \
        f"{own[0]} {own[1]} of 60 / Positive 60 of 60§"
    assert rows["tweets", "one", "attribution"]["source_top_label_share"] == 1.0
    assert not rows["vitaminc", "one", "attribution"]["most frequent answer (itself / source)"].endswith("§")
    why = {r["claim"]: r["why"] for r in reading_table(study).rows}
    claim = f"w/ coupled (beyond the paper): more faithful to itself than to {SOURCE}, attribution, %s-word, %s"
    assert f"the source {SOURCE} answers 'Positive' to 60 of 60 samples" in why[claim % ("one", "tweets")]
    assert "the source" not in why[claim % ("one", "vitaminc")]
