"""The faithfulness reward: the evaluator's verdicts, recomputed; hand-made cases with known rewards."""

import pytest

from selfexplain.api import evaluate
from selfexplain.rewards import Item, RewardSettings, judge
from selfexplain.tasks import get_task
from selfexplain.tasks.data import Example


def _write_tweets(path, rows):
    path.write_text("".join(f'"{p}","1","d","q","u","{t}"\n' for p, t in rows))


def test_judge_recomputes_every_verdict_of_an_evaluation(tmp_path, keyword_backend):
    data = tmp_path / "s140.csv"
    _write_tweets(data, [(0, "I hate mondays"), (0, "bad bad day"), (4, "I like mondays"), (4, "nice one")])
    for width in ("one", "multi"):
        records = evaluate(task="sentiment140", data=str(data), limit=4, chunk_size=2, output_path=tmp_path / "runs",
                           split="all", width=width, backend_instance=keyword_backend).records
        items = [Item(Example(r["sample_id"], r["input"], r["gold"], r["context"]), r["style"], r["width"],
                      r["raw_explanation"]) for r in records]
        for r, j in zip(records, judge(keyword_backend, get_task("sentiment140"), items)):
            assert (j.valid, j.reason, j.edited_input, j.prediction, j.new_prediction, j.faithful) == (
                r["valid"], r["reason"], r["edited_input"], r["prediction"], r["new_prediction"], r["faithful"])
            assert j.reward == (-1.0 if not r["valid"] else 1.0 if r["faithful"] else 0.0)
        if width == "one":
            assert {r["valid"] for r in records} == {True, False}  # both kinds were checked


def test_known_rewards_binary_and_graded(keyword_backend):
    ex = Example("x", "I hate mondays", "Negative")
    items = [Item(ex, "attribution", "one", "Answer: hate"),  # -> "I [REDACTED] mondays": Positive, faithful
             Item(ex, "attribution", "one", "Answer: mondays"),  # -> "I hate [REDACTED]": still Negative
             Item(ex, "attribution", "one", "Answer: banana")]  # not a word of the input: invalid
    task = get_task("sentiment140")
    assert [j.reward for j in judge(keyword_backend, task, items)] == [1.0, 0.0, -1.0]
    graded = judge(keyword_backend, task, items, RewardSettings(graded=0.5))
    # The keyword model gives p(Negative) 0.9 with 'hate', 0.2 without: shift 0.7 when 'hate' goes, 0 otherwise.
    assert graded[0].shift == pytest.approx(0.7) and graded[0].reward == pytest.approx(1.35)
    assert graded[1].shift == pytest.approx(0.0) and graded[1].reward == pytest.approx(0.0)
    assert graded[2].shift is None and graded[2].reward == -1.0
    assert judge(keyword_backend, task, []) == []


def test_an_invalid_explanation_must_get_the_lowest_reward():
    with pytest.raises(ValueError, match="lowest reward"):
        RewardSettings(invalid=-0.2, graded=0.5)  # a valid, unfaithful edit that raises p(ŷ) could reach -0.5
    RewardSettings(invalid=-1.0, graded=0.5)


class _MondayHater:
    """A second keyword model that disagrees: 'mondays' is Negative to it, 'hate' is not."""

    identity = {"kind": "test", "name": "monday-hater"}

    def label_logprobs(self, chats, labels):
        import math

        out = []
        for chat in chats:
            p_neg = 0.8 if "mondays" in chat[-1]["content"].lower() else 0.3
            out.append([math.log({"Negative": p_neg, "Positive": 1 - p_neg}.get(l, 1e-6)) for l in labels])
        return out

    def generate(self, chats, max_new_tokens):  # a reference only classifies
        raise AssertionError("the reference model is never asked to explain")


def test_evaluate_judges_explanations_against_a_reference_model(tmp_path, keyword_backend):
    """Faithful to itself is not faithful to another model: 'hate' flips the keyword model, not the reference."""
    from selfexplain.reports import summary_markdown

    data = tmp_path / "s140.csv"
    _write_tweets(data, [(0, "I hate mondays"), (4, "I like mondays")])
    kw = dict(task="sentiment140", data=str(data), limit=2, chunk_size=2, split="all", styles=["attribution"],
              backend_instance=keyword_backend)
    plain = evaluate(output_path=tmp_path / "runs", **kw)
    res = evaluate(output_path=tmp_path / "runs", reference_instance=_MondayHater(), **kw)
    assert res.run_dir != plain.run_dir  # the reference is part of the run's identity
    assert "reference" not in plain.records[0]  # runs without one keep their records as they were
    hate = next(r for r in res.records if r["input"] == "I hate mondays")
    assert hate["faithful"] is True  # 'hate' removed: the keyword model says Positive
    assert hate["reference"] == {"model": "monday-hater", "prediction": "Negative", "new_prediction": "Negative",
                                 "faithful": False, "shift": pytest.approx(0.0)}
    ref = next(s for s in res.summary.styles if s.style == "attribution").measures["reference"]
    assert ref["n"] == 1 and ref["faithfulness"] == 0.0 and ref["faithful_to_both"] == 0
    assert "Reference model `monday-hater`" in summary_markdown(res.summary)
