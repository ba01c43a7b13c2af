"""Which measure to trust: measures tried on pairs (w*, another word) whose faithful member is known."""

import json

import pytest
from study_factory import make_study

from selfexplain.reports import all_tables
from selfexplain.reports.diagnosticity import diagnosticity_table
from selfexplain.reports.study import load_study


def _attribution(i, prediction, erased, influence, raw, star=0):
    words = [f"w{k}" for k in range(len(erased))]
    return {"attribution": {"sample_id": f"d{i}", "prediction": prediction, "words": words,
                            "erased_predictions": erased, "influence": influence, "influence_raw": raw,
                            "label_probs": {"Positive": 0.6, "Negative": 0.4} if prediction == "Positive"
                            else {"Positive": 0.3, "Negative": 0.7}, "w_star_index": star},
            "constructed": {s: {"explanation": "x", "flips": erased[star] != prediction}
                            for s in ("attribution", "redaction", "counterfactual")}}


def test_each_measure_ranks_w_star_against_every_other_word_of_its_input(tmp_path):
    root = make_study(tmp_path / "s", n=30)
    records = [
        # w* flips, the other two do not: the flip ranks w* above both; raw p agrees with one of the two.
        _attribution(0, "Positive", ["Negative", "Positive", "Positive"], [0.5, 0.1, 0.0], [0.4, 0.45, 0.0]),
        # Nothing flips: the flip ties every pair; the shifts still order them.
        _attribution(1, "Negative", ["Negative"] * 4, [0.3, 0.2, 0.1, 0.3], [0.3, 0.2, 0.1, 0.0]),
        # One word only: no pair (left out).
        _attribution(2, "Positive", ["Negative"], [0.9], [0.9]),
    ]
    (root / "runs" / "construct-tweets" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = {r["measure"]: r for r in diagnosticity_table(load_study(root)).rows}
    flip = rows["binary flip (the paper's)"]
    assert (flip["above"], flip["tie_share"], flip["below_share"], flip["n"]) == (0.5, 0.5, 0.0, 2)
    shift = rows["graded shift, normalised p(ŷ) (= erasure rank; what picks w*)"]
    assert shift["above"] == pytest.approx((1 + 2 / 3) / 2) and shift["tie_share"] == pytest.approx((1 / 3) / 2)
    raw = rows["graded shift, raw p(ŷ)"]
    assert (raw["above"], raw["below_share"]) == (pytest.approx((1 / 2 + 1) / 2), pytest.approx(1 / 4))
    # The estimands over the set: w* flips on 1 of 2 inputs, a random other word on none.
    est = rows["estimand: faithful among all samples (invalid = not faithful)"]
    assert (est["diff"], est["n"]) == (0.5, 2)
    assert "diagnosticity" in [t.name for t in all_tables(load_study(root))]


def test_a_study_without_erasure_records_has_an_empty_table(tmp_path):
    # The factory's construction records carry no per-word influences (as runs of version 0.1): no table.
    study = load_study(make_study(tmp_path / "s", n=30))
    assert diagnosticity_table(study).rows == []
    assert "diagnosticity" not in [t.name for t in all_tables(study)]
