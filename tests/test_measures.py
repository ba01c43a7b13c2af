"""Graded faithfulness, explanation vs random baseline, erasure agreement and power, on records with known answers."""

import numpy as np
import pytest

from selfexplain.measures import cell_measures, erasure_rank, shift
from selfexplain.stats import BEATS, DOES_NOT, UNDETERMINED, detectable_difference, paired_difference, verdict


def _rec(i, p_new, p_rand, faithful=None, random_faithful=None, valid=True):
    """Prediction Positive at 0.8; after the explanation's edit p(Positive) = p_new, after the random one p_rand."""
    return {"sample_id": str(i), "valid": valid, "prediction": "Positive",
            "label_probs": {"Positive": 0.8, "Negative": 0.2},
            "new_label_probs": {"Positive": p_new, "Negative": 1 - p_new} if valid else None,
            "random_label_probs": {"Positive": p_rand, "Negative": 1 - p_rand} if valid else None,
            "faithful": (p_new < 0.5) if faithful is None else faithful,
            "random_faithful": (p_rand < 0.5) if random_faithful is None else random_faithful}


def test_shift_is_the_drop_of_the_predicted_label():
    r = _rec(0, 0.3, 0.7)
    assert shift(r) == pytest.approx(0.5) and shift(r, "random_label_probs") == pytest.approx(0.1)
    assert shift(_rec(1, 0.3, 0.7, valid=False)) is None


def test_explanations_that_move_more_than_random_beat_chance():
    recs = [_rec(i, 0.3 + 0.01 * i, 0.7) for i in range(20)] + [_rec(99, 0, 0, valid=False)]
    m = cell_measures(recs)
    assert m["shift"]["n"] == 20 and m["shift"]["mean"] == pytest.approx(0.8 - np.mean([0.3 + 0.01 * i for i in range(20)]))
    assert m["random_shift"]["mean"] == pytest.approx(0.1)
    vs = m["vs_random"]
    assert vs["pairs"] == 20 and vs["shift"]["difference"] == pytest.approx(m["shift"]["mean"] - 0.1)
    assert vs["flip"]["difference"] == pytest.approx(1.0)  # every explanation flips, no random edit does
    assert vs["shift"]["low"] > 0 and vs["shift"]["p_value"] < 0.01 and vs["verdict"] == BEATS


def test_explanations_no_better_than_random_do_not():
    recs = [_rec(i, 0.7, 0.3) for i in range(15)]
    assert cell_measures(recs)["vs_random"]["verdict"] == DOES_NOT
    # Mixed, or too few pairs: undetermined.
    mixed = [_rec(i, 0.3 if i % 2 else 0.75, 0.7 if i % 2 else 0.3) for i in range(16)]
    assert cell_measures(mixed)["vs_random"]["verdict"] == UNDETERMINED
    assert cell_measures([_rec(i, 0.1, 0.8) for i in range(5)])["vs_random"]["verdict"] == UNDETERMINED


def test_records_without_the_random_probabilities_fall_back_to_flips():
    old = [{**_rec(i, 0.3, 0.7), "random_label_probs": None} for i in range(12)]  # written before they were kept
    m = cell_measures(old)
    v = m["vs_random"]
    assert m["shift"]["n"] == 12 and m["random_shift"]["n"] == 0 and v["shift"]["n"] == 0
    assert v["verdict_on"] == "flip" and v["pairs"] == 12 and v["flip"]["difference"] == 1.0 and v["verdict"] == BEATS


def test_paired_difference_and_verdict_against_direct_computation():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.2, 0.1, 50), rng.normal(0.0, 0.1, 50)
    d = paired_difference(a, b)
    assert d.difference == pytest.approx(float(np.mean(a - b)))
    se = np.std(a - b, ddof=1) / np.sqrt(50)
    assert d.high - d.low == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert verdict(d) == BEATS and d.p_value < 0.001


def test_erasure_rank_of_named_words():
    words, infl = ["I", "hate", "rainy", "mondays"], [0.0, 0.5, 0.1, 0.2]
    src = "I hate rainy mondays"
    # hate 1, mondays 2/3, rainy 1/3, I 0
    assert erasure_rank(src, "I [REDACTED] rainy mondays", words, infl, "hate") == (1.0, True)
    rank, hit = erasure_rank(src, "I love rainy days", words, infl, "hate")
    assert rank == pytest.approx((1 + 2 / 3) / 2) and hit is True
    assert erasure_rank(src, "[REDACTED] hate rainy mondays", words, infl, "hate") == (0.0, False)
    assert erasure_rank(src, "I hate rainy mondays so much", words, infl, "hate") == (None, None)  # inserts only
    assert erasure_rank("hate", "[REDACTED]", ["hate"], [0.5], "hate") == (None, None)  # one word: no ranking


def test_cell_erasure_summary():
    recs = [{**_rec(i, 0.3, 0.7), "erasure_rank": r, "names_w_star": r == 1.0, "random_erasure_rank": 0.5,
             "random_names_w_star": False} for i, r in enumerate([1.0, 1.0, 0.5, 0.0])]
    e = cell_measures(recs)["erasure"]
    assert e["n"] == 4 and e["rank"]["mean"] == pytest.approx(0.625) and e["names_w_star"] == 0.5
    assert e["random_rank"]["mean"] == 0.5 and e["random_names_w_star"] == 0.0


def test_detectable_difference():
    # Normal approximation at p = 0.5: (1.96 + 0.84) * sqrt(0.25 * 2 / 1000) = 0.0626.
    assert detectable_difference(0.5, 1000, 1000) == pytest.approx(0.0626, abs=0.001)
    small, large = detectable_difference(0.1, 30, 30), detectable_difference(0.1, 3000, 3000)
    assert small > 5 * large > 0
    assert detectable_difference(0.0, 12, 13) > 0.2  # a zero rate still has a detectable rise
    assert detectable_difference(0.9, 3, 3) == pytest.approx(0.1)  # nothing short of 1 is detectable
    assert detectable_difference(None, 10, 10) is None and detectable_difference(0.5, 0, 10) is None


def test_evaluate_records_graded_and_erasure_fields(tmp_path, keyword_backend):
    from selfexplain.api import evaluate

    data = tmp_path / "s.csv"
    data.write_text("".join(f'"{p}","1","d","q","u","{t}"\n' for p, t in
                            [(0, "I hate mondays"), (0, "I hate rain"), (4, "I like it"), (4, "nice day")]))
    res = evaluate(task="sentiment140", data=str(data), limit=4, split="all", output_path=tmp_path,
                   backend_instance=keyword_backend, erasure=True)
    hate = next(r for r in res.records if r["input"] == "I hate mondays" and r["style"] == "attribution")
    assert hate["valid"] and hate["w_star"] == "hate"
    assert hate["erasure_rank"] == 1.0 and hate["names_w_star"] is True
    assert hate["random_label_probs"] is not None and hate["random_erasure_rank"] is not None
    att = next(s for s in res.summary.styles if s.style == "attribution")
    assert att.measures["erasure"]["n"] == 2 and att.measures["shift"]["mean"] == pytest.approx(0.7)
    assert "erasure rank" in (res.run_dir / "summary.md").read_text()
    assert "erasure" in res.run_dir.joinpath("config.json").read_text()
