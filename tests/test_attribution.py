"""Erasure attribution: exact influences on a stand-in model; the fast path against the plain computation on a
real model (SmolLM2: the two computations must agree on any model, and this one is four times cheaper than the
default; the default model's fast path is checked against vLLM's scores and in the end-to-end test)."""

import pytest

from selfexplain.attribution import attribute
from selfexplain.tasks import get_task
from selfexplain.tasks.data import Example

TASK = get_task("sentiment140")


def test_influence_vector_and_w_star(keyword_backend):
    ex = Example("a", "I hate mondays!", "Negative")
    (a,) = attribute(keyword_backend, TASK, [ex])
    assert a.words == ["I", "hate", "mondays"] and a.occurrences == [1, 1, 1]
    assert a.prediction == "Negative" and a.second_label == "Positive"
    assert a.influence == pytest.approx([0.0, 0.7, 0.0])
    assert a.influence_raw == pytest.approx([0.0, 0.7, 0.0])
    assert a.w_star == "hate" and a.w_star_index == 1
    assert a.erased_predictions == ["Negative", "Positive", "Negative"] and a.w_star_flips
    # The erased variant redacts the word, keeping its punctuation, in a fresh classification chat.
    assert any("I [REDACTED] mondays!" in c[0]["content"] for c in keyword_backend.scored)


def test_repeated_word_is_erased_everywhere(keyword_backend):
    (a,) = attribute(keyword_backend, TASK, [Example("b", "bad movie, Bad acting", "Negative")])
    assert a.words == ["bad", "movie", "acting"] and a.occurrences == [2, 1, 1]
    assert a.w_star == "bad"
    assert any("[REDACTED] movie, [REDACTED] acting" in c[0]["content"] for c in keyword_backend.scored)


def test_input_without_words(keyword_backend):
    (a,) = attribute(keyword_backend, TASK, [Example("c", "!!! ...", "Positive")])
    assert a.words == [] and a.w_star is None and a.w_star_flips is None


class _Plain:
    """The same backend, scored the plain way: one full forward pass per variant, batch size 1."""

    def __init__(self, be):
        self.be = be

    def label_logprobs(self, chats, labels):
        return self.be.label_logprobs_plain(chats, labels)


@pytest.mark.embedded
@pytest.mark.slow
def test_fast_path_matches_plain_computation_on_a_real_model(smollm2):
    from selfexplain.backends.hf import HFBackend

    be = HFBackend.from_loaded(*smollm2)
    # Varied lengths (1 to 20 words), repeated words, punctuation attached and alone.
    texts = [
        "I hate waking up early.",
        "good good GOOD!!! so good, really good :)",
        "ok",
        "@united flight delayed 3 hours... again. The staff were friendly, the room was clean - thanks #fail",
        "not bad, not bad at all - (honestly) better than expected?!",
    ]
    exs = [Example(str(i), t, "Positive") for i, t in enumerate(texts)]
    be._prefix_memo.clear()
    fast = attribute(be, TASK, exs)
    assert be._prefix_memo, "the shared-prefix path was not taken"
    plain = attribute(_Plain(be), TASK, exs)
    for f, p in zip(fast, plain):
        assert f.w_star == p.w_star and f.prediction == p.prediction
        assert f.erased_predictions == p.erased_predictions
        for a, b in zip(f.influence + f.influence_raw, p.influence + p.influence_raw):
            assert abs(a - b) < 1e-4
        for label in TASK.labels:
            assert abs(f.label_probs[label] - p.label_probs[label]) < 1e-4


def test_attribute_command_stores_and_reuses(tmp_path, keyword_backend):
    from selfexplain import api

    data = tmp_path / "s.csv"
    data.write_text("".join(f'"{p}","1","d","q","u","{t}"\n' for p, t in
                            [(0, "I hate it"), (0, "bad day"), (4, "I like it"), (4, "fine")]))
    kw = dict(task="sentiment140", data=str(data), limit=4, split="all", chunk_size=2, output_path=tmp_path,
              backend_instance=keyword_backend)
    first = api.attribute(**kw)
    n_scored = len(keyword_backend.scored)
    again = api.attribute(**kw)
    assert len(keyword_backend.scored) == n_scored  # nothing recomputed
    assert [a.w_star for a in again.attributions] == [a.w_star for a in first.attributions]
    hate = next(a for a in first.attributions if a.text == "I hate it")
    assert hate.w_star == "hate" and hate.influence[1] > 0
