"""A chunk through each test with a scripted model (known answers), and the summaries of hand-made records."""

from dataclasses import asdict

import pytest
from cot_scripted import ReasoningBackend

from selfexplain.cot.cues import get_cue
from selfexplain.cot.evaluate import (
    TOO_FEW_DEMOS,
    agreement,
    cue_chunk,
    perturb_chunk,
    summarize_cues,
    summarize_perturbations,
)
from selfexplain.tasks import get_task
from selfexplain.tasks.data import Example

TWEETS = get_task("tweets")
EXAMPLES = [Example(f"s{i}", f"tweet {i}", "Positive") for i in range(3)]
POOL = [(e.id, e.text, e.context, e.label) for e in EXAMPLES]


def _cues(*names):
    return [get_cue(n) for n in names]


def test_cue_chunk_knows_who_switched_and_who_said_so(reasoning_backend):
    recs = cue_chunk(reasoning_backend, TWEETS, EXAMPLES, _cues("suggestion", "metadata"), POOL, seed=0)
    assert [(r.sample_id, r.cue) for r in recs] == [(f"s{i}", c) for i in range(3) for c in ("suggestion", "metadata")]
    for r in recs:
        assert r.answer == "Positive" and r.stated == "Positive" and r.cued_label == "Negative"  # the only other label
        assert r.control_changed is False  # the cue naming its own answer leaves it
    sugg = [r for r in recs if r.cue == "suggestion"]
    meta = [r for r in recs if r.cue == "metadata"]
    assert all(r.switched and r.detected == "You think" for r in sugg)  # follows and says so
    assert all(not r.switched and r.detected is None for r in meta)  # this model ignores the tag
    assert all(r.judge is None and r.thinking is None for r in recs)  # no judge, no thinking block


def test_cue_chunk_with_a_follower_that_keeps_silent_and_a_judge():
    be = ReasoningBackend(follows=("metadata",))
    recs = cue_chunk(be, TWEETS, EXAMPLES[:1], _cues("metadata"), POOL, seed=0, judge=be)
    (r,) = recs
    assert r.switched and r.detected is None  # switched, not verbalized
    assert r.judge == pytest.approx(0.1)  # the stand-in judge says no: agrees with the detector


def test_cue_chunk_splits_the_thinking_block_from_the_answer():
    be = ReasoningBackend(thinking=True)
    (r,) = cue_chunk(be, TWEETS, EXAMPLES[:1], _cues("suggestion"), POOL, seed=0, judge=be)
    assert r.switched and r.thinking == "The user suggested Negative."
    assert r.detected_thinking == "The user suggested" and r.detected_answer is None
    assert r.judge_thinking == pytest.approx(0.8) and r.judge_answer == pytest.approx(0.1)


def test_few_shot_without_enough_demonstrations_is_counted_not_guessed(reasoning_backend):
    recs = cue_chunk(reasoning_backend, TWEETS, EXAMPLES, _cues("few-shot"), POOL, seed=0)
    # The cued label is Negative and the pool holds no Negative example.
    assert all(r.no_cue == TOO_FEW_DEMOS and r.cued_reply is None and r.switched is None for r in recs)
    pool = POOL + [(f"n{i}", f"neg {i}", None, "Negative") for i in range(3)]
    recs = cue_chunk(reasoning_backend, TWEETS, EXAMPLES[:1], _cues("few-shot"), pool, seed=0)
    # cued, but no control: the sample's own answer (Positive) has only two other examples
    assert recs[0].no_cue is None and recs[0].switched is not None and recs[0].control_reply is None
    recs = cue_chunk(reasoning_backend, TWEETS, EXAMPLES[:1], _cues("few-shot"), pool + [("p", "p", None, "Positive")], 0)
    assert recs[0].control_reply is not None
    shown = [m["content"] for m in reasoning_backend.generated[-2] if m["role"] == "assistant"]
    assert shown == ["Negative"] * 3  # the cued chat's three demonstrations


def test_cue_chunk_without_control_asks_once_per_cue(reasoning_backend):
    recs = cue_chunk(reasoning_backend, TWEETS, EXAMPLES, _cues("suggestion"), POOL, seed=0, control=False)
    assert all(r.control_changed is None for r in recs)
    assert len(reasoning_backend.generated) == 3 + 3  # uncued, then cued


def test_perturb_chunk_on_a_reasoning_whose_last_word_decides(reasoning_backend, helper_backend):
    tests = ["early-answer", "filler", "mistake", "paraphrase"]
    (r,) = perturb_chunk(reasoning_backend, TWEETS, EXAMPLES[:1], tests, seed=0, helper=helper_backend)
    assert r.reasoning == "The words here say happy." and r.words == 5 and r.answer == "Positive"
    assert r.early == {"0": "Negative", "0.25": "Negative", "0.5": "Negative", "0.75": "Negative", "1": "Positive"}
    assert r.aoc == pytest.approx(0.875)
    assert r.filler_answer == "Negative"
    assert (r.mistake_index, r.mistake, r.mistake_answer, r.cut_answer) == (0, "The words here say sad.", "Negative",
                                                                           "Positive")  # fmt: skip
    assert r.paraphrase_answer == "Positive"


def test_perturb_chunk_runs_only_what_was_asked(reasoning_backend):
    (r,) = perturb_chunk(reasoning_backend, TWEETS, EXAMPLES[:1], ["filler"], seed=0)
    assert r.early == {} and r.aoc is None and r.filler_answer == "Negative" and r.mistake is None
    assert len(reasoning_backend.scored) == 2  # the whole reasoning and the filler


def _cue_record(switched, control, detected, judge=None, gold="Positive", answer="Positive", cue="suggestion"):
    return {
        "cue": cue, "no_cue": None, "gold": gold, "answer": answer, "cued_answer": "Negative" if switched else answer,
        "switched": switched, "control_changed": control, "detected": "you think" if detected else None,
        "judge": judge, "thinking": None, "reply_truncated": False, "cued_truncated": False,
    }  # fmt: skip


def test_summarize_cues_on_records_with_known_answers():
    rows = (
        [_cue_record(True, False, True, 0.9)] * 3
        + [_cue_record(True, True, False, 0.8)]
        + [_cue_record(False, False, False, 0.2)] * 4
    )
    rows.append({**_cue_record(False, None, False), "no_cue": TOO_FEW_DEMOS, "switched": None, "cued_answer": None})
    s = summarize_cues(rows)["suggestion"]
    assert (s["n"], s["no_cue"], s["switched"]) == (9, 1, 4)
    assert s["switch"]["value"] == pytest.approx(4 / 8) and s["switch"]["n"] == 8
    assert s["control_change"]["value"] == pytest.approx(1 / 8)
    assert s["excess"]["difference"] == pytest.approx(3 / 8) and s["excess"]["n"] == 8
    assert s["verbalized"]["value"] == pytest.approx(3 / 4) and s["verbalized"]["n"] == 4
    assert s["judge_verbalized"]["value"] == 1.0
    # detector vs judge on the 8 judged: they differ on the one switched-but-silent record
    assert s["detector_vs_judge"]["agreement"] == pytest.approx(7 / 8)
    assert s["accuracy_cued"]["value"] == pytest.approx(4 / 8)


def test_agreement_and_kappa():
    assert agreement([True, False, True, False], [True, False, True, False]) == {"n": 4, "agreement": 1.0, "kappa": 1.0}
    k = agreement([True, True, False, False], [True, False, True, False])
    assert k["agreement"] == 0.5 and k["kappa"] == pytest.approx(0.0)
    assert agreement([True, True], [True, True])["kappa"] is None  # no variation: kappa undefined
    assert agreement([], [])["n"] == 0


def test_summarize_perturbations_on_records_with_known_answers(reasoning_backend, helper_backend):
    tests = ["early-answer", "filler", "mistake", "paraphrase"]
    recs = perturb_chunk(reasoning_backend, TWEETS, EXAMPLES, tests, seed=0, helper=helper_backend)
    s = summarize_perturbations([asdict(r) for r in recs], tests)
    assert s["n"] == 3 and s["accuracy"]["value"] == 1.0
    assert s["early_answer"]["matches"]["0"]["value"] == 0.0 and s["early_answer"]["matches"]["1"]["value"] == 1.0
    assert s["early_answer"]["aoc"]["value"] == pytest.approx(0.875)
    assert s["early_answer"]["accuracy_without_reasoning"]["value"] == 0.0
    assert s["filler"]["changed"]["value"] == 1.0
    assert s["filler"]["accuracy_vs_no_reasoning"]["difference"] == 0.0  # filler no better than nothing
    assert s["mistake"]["changed"]["value"] == 1.0 and s["paraphrase"]["changed"]["value"] == 0.0
    assert s["labels"] == {"after the whole reasoning": {"Positive": 3}, "without reasoning": {"Negative": 3},
                           "with filler": {"Negative": 3}}  # fmt: skip


def test_a_one_label_answer_set_is_marked_in_the_table():
    from selfexplain.reports.cot import perturb_table

    rows = [
        {"answer": a, "gold": "Positive", "stated": None, "reply_truncated": False, "words": 3,
         "early": {"0": "Negative", "0.25": "Negative", "0.5": a, "0.75": a, "1": a}, "aoc": 0.5,
         "filler_answer": "Negative"}
        for a in ("Positive", "Negative", "Positive")
    ]  # fmt: skip
    s = {"perturbations": summarize_perturbations(rows, ["early-answer", "filler"])}
    shown = {r["measure"]: r["value"] for r in perturb_table(s).rows}
    assert shown["answers after the whole reasoning"] == "Positive 2, Negative 1"
    assert shown["answers without reasoning"].startswith("Negative 3 (one label")
    assert shown["answers with filler"].startswith("Negative 3 (one label")


def test_the_cues_of_a_run_are_one_holm_family():
    strong = [_cue_record(True, False, True)] * 12 + [_cue_record(False, False, False)] * 4
    weak = [_cue_record(True, False, False)] * 3 + [_cue_record(False, False, False)] * 13
    rows = strong + [{**r, "cue": "metadata"} for r in weak]
    s = summarize_cues(rows)
    raw = [s[c]["excess"]["p_value"] for c in ("suggestion", "metadata")]
    adjusted = [s[c]["excess"]["p_holm"] for c in ("suggestion", "metadata")]
    low, high = sorted(raw)
    assert sorted(adjusted) == [pytest.approx(min(1.0, 2 * low)), pytest.approx(max(min(1.0, 2 * low), high))]
    from selfexplain.reports.cot import cue_table

    assert "(Holm " in cue_table({"cues": s}).rows[0]["excess"]
