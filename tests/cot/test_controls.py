"""The cue test's optional controls, on a three-label task with scripted models whose answers are known: the cue
naming a third label (does the answer follow the label the cue names, or any cue at all?) and resampling (how
often does the cued label come up with no cue?)."""

import math

import pytest

from selfexplain.backends import Backend, Generation
from selfexplain.cot.cues import get_cue, resample_seed
from selfexplain.cot.evaluate import cue_chunk, summarize_cues
from selfexplain.errors import UserError
from selfexplain.pipeline.cot import cot
from selfexplain.reports.cot import cue_table, folder_tables
from selfexplain.tasks import get_task
from selfexplain.tasks.data import Example

THREE = get_task("tweets").model_copy(update={"name": "three", "labels": ["Negative", "Neutral", "Positive"]})
EXAMPLES = [Example(f"s{i}", f"text {i}", "Positive") for i in range(12)]
POOL = [(e.id, e.text, e.context, e.label) for e in EXAMPLES]
SUGGESTION = [get_cue("suggestion")]


class ThreeWay(Backend):
    """Uncued: "happy", answered Positive.  With a suggestion: ``follow`` the label it names, or (``follow``
    false) answer Negative whatever it names.  Sampled without a cue: Neutral on odd seeds, else as greedy."""

    identity = {"kind": "test", "name": "three-way"}

    def __init__(self, follow: bool):
        self.follow = follow
        self.seeds: list[int] = []

    def generate(self, chats, max_new_tokens):
        out = []
        for chat in chats:
            q = chat[-1]["content"]
            named = next((lab for lab in THREE.labels if f"I think the answer is {lab}" in q), None)
            reply = "It reads happy. Answer: Positive"
            if named:
                reply = f"Answer: {named if self.follow else 'Negative'}"
            out.append(Generation(reply, 4, False))
        return out

    def sample(self, chats, max_new_tokens, temperature, seeds):
        self.seeds += seeds
        greedy = self.generate(chats, max_new_tokens)
        return [Generation("Meh. Answer: Neutral", 3, False) if s % 2 else g for g, s in zip(greedy, seeds)]

    def label_logprobs(self, chats, labels):
        out = []
        for chat in chats:
            shown = chat[-1]["content"] if chat[-1]["role"] == "assistant" else chat[-2]["content"]
            pick = next((lab for lab in THREE.labels if f"Answer: {lab}" in shown), "Neutral")
            out.append([math.log(0.8 if lab == pick else 0.1) for lab in labels])
        return out


def _summary(follow: bool, resamples: int = 0):
    be = ThreeWay(follow)
    recs = cue_chunk(be, THREE, EXAMPLES, SUGGESTION, POOL, seed=0, other=True, resamples=resamples)
    return be, recs, summarize_cues([vars(r) for r in recs])["suggestion"]


def test_a_model_moved_by_any_cue_shows_no_pull_beyond_the_third_label():
    _, recs, s = _summary(follow=False)
    for r in recs:
        assert r.answer == "Positive" and r.cued_label in ("Negative", "Neutral")
        assert r.other_label == ({"Negative", "Neutral"} - {r.cued_label}).pop()  # the one wrong label left
        assert r.other_answer == "Negative" and r.other_hit == (r.cued_label == "Negative")
        assert r.switched == r.other_hit  # the cue's text moves the answer, not the label it names
    assert s["excess_other"]["difference"] == 0.0
    assert s["control_change"]["value"] == 1.0  # the control (naming Positive) moves it too


def test_a_model_that_follows_the_named_label_shows_the_whole_pull():
    _, recs, s = _summary(follow=True)
    assert all(r.switched and r.other_hit is False and r.other_answer == r.other_label for r in recs)
    assert s["switch"]["value"] == 1.0 and s["other_hit"]["value"] == 0.0
    assert s["excess_other"]["difference"] == 1.0 and s["excess_other"]["p_holm"] is not None


def test_resampling_counts_the_cued_label_among_uncued_answers():
    be, recs, s = _summary(follow=True, resamples=3)
    seeds = [resample_seed(0, "three", e.id, k) for e in EXAMPLES for k in range(3)]
    assert be.seeds == seeds  # per sample and draw: the same whatever the chunking
    expected_hits, expected_flips = [], []
    for e, r in zip(EXAMPLES, recs):
        drawn = ["Neutral" if s % 2 else "Positive" for s in seeds[EXAMPLES.index(e) * 3 :][:3]]
        assert r.resampled == drawn
        expected_hits.append(sum(a == r.cued_label for a in drawn) / 3)
        expected_flips.append(sum(a != "Positive" for a in drawn) / 3)
    assert s["resamples"] == 3
    assert s["resample_hit"]["value"] == pytest.approx(sum(expected_hits) / 12)
    assert s["resample_flip"]["value"] == pytest.approx(sum(expected_flips) / 12)
    assert s["excess_resampling"]["difference"] == pytest.approx(1 - sum(expected_hits) / 12)
    # Holm over the run's family: the control's excess, the third label's and resampling's
    ps = [s[k]["p_value"] for k in ("excess", "excess_other", "excess_resampling")]
    assert all(s[k]["p_holm"] >= p for k, p in zip(("excess", "excess_other", "excess_resampling"), ps))


def test_the_report_shows_the_controls_only_where_a_run_has_them(tmp_path):
    _, _, with_controls = _summary(follow=True, resamples=2)
    table = cue_table({"cues": {"suggestion": with_controls}, "temperature": 0.7})
    at = table.columns.index("excess")
    assert table.columns[at + 1 : at + 6] == [
        "third label", "excess vs third", "resampled", "excess vs resampled", "resampled flips"
    ]  # fmt: skip
    assert "third label" in table.note and "sampled 2 times per sample (temperature 0.7)" in table.note
    plain = {k: v for k, v in with_controls.items() if k not in ("other_hit", "excess_other", "resamples",
             "resample_hit", "resample_flip", "excess_resampling")}  # fmt: skip
    assert "third label" not in cue_table({"cues": {"suggestion": plain}}).columns


def test_a_folder_with_and_without_controls_keeps_every_column(tmp_path):
    import json

    _, _, with_controls = _summary(follow=True)
    plain = {k: v for k, v in with_controls.items() if k not in ("other_hit", "excess_other")}
    for name, cues in (("cot-cue-a", plain), ("cot-cue-b", with_controls)):
        run = tmp_path / name
        run.mkdir()
        summary = {"test": "cue", "task": "three", "model": {"kind": "test", "name": name}, "cues": {"x": cues}}
        (run / "summary.json").write_text(json.dumps(summary))
        (run / "config.json").write_text(json.dumps({"data": {"limit": 12}}))
    (table,) = folder_tables(tmp_path)
    assert table.columns.index("third label") == table.columns.index("excess") + 1
    assert [r.get("third label", "-") for r in table.rows][1] != "-"


def test_the_controls_are_refused_in_one_line_where_they_cannot_run(tmp_path):
    with pytest.raises(UserError, match="--other-label: task tweets has no wrong label besides the cued one"):
        cot("cue", other=True, output_path=tmp_path)
    with pytest.raises(UserError, match="--temperature must be above 0"):
        cot("cue", resamples=2, temperature=0, output_path=tmp_path)


def test_a_backend_that_cannot_sample_says_so_before_any_sample(reasoning_backend, tmp_path):
    be = reasoning_backend
    with pytest.raises(UserError, match="cannot sample replies .*--resamples 0"):
        cot("cue", backend_instance=be, resamples=2, limit=2, output_path=tmp_path)
    assert be.generated == []
