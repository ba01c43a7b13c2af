"""Reasoning perturbations: pure functions with known results."""

import random

import pytest

from selfexplain.cot import perturb as P


def test_body_drops_the_final_answer_statement_only():
    assert P.body("It is bright. The answer is: Positive") == "It is bright."
    assert P.body("Answer: maybe. Then more. Final answer: Negative") == "Answer: maybe. Then more."
    assert P.body("So the final answer is: Negative") == ""
    assert P.body("No statement at all") == "No statement at all"


@pytest.mark.parametrize(
    "fraction, kept", [(0.0, ""), (0.25, "one"), (0.5, "one  two,"), (0.75, "one  two, three"), (1.0, None)]
)
def test_truncate_keeps_a_share_of_words_and_their_spacing(fraction, kept):
    text = "one  two, three\nfour"
    assert P.truncate(text, fraction) == (text if kept is None else kept)


def test_truncate_rounds_half_up():
    assert P.truncate("a b", 0.25) == "a"  # 0.5 word -> 1
    assert P.truncate("a b c d e f", 0.25) == "a b"  # 1.5 -> 2
    assert P.truncate("a b c d e", 0.5) == "a b c"


def test_filler_has_one_token_per_word():
    assert P.filler("It is a good day.") == "... ... ... ... ..."
    assert P.filler("") == ""


def test_mistake_cut_replaces_the_chosen_sentence_and_drops_the_rest():
    text = "First step. Second step! Third step?"
    assert P.sentences(text) == ["First step.", "Second step!", "Third step?"]
    assert P.cut_after(text, 1) == "First step. Second step!"
    assert P.cut_after(text, 1, " Wrong step. ") == "First step. Wrong step."
    assert P.mistake_site("", random.Random(0)) is None
    site = P.mistake_site(text, P.mistake_rng(0, "tweets", "id1"))
    assert site == P.mistake_site(text, P.mistake_rng(0, "tweets", "id1")) and 0 <= site < 3


@pytest.mark.parametrize(
    "matches, expected",
    [
        ([True] * 5, 0.0),  # the answer is there before any reasoning
        ([False, False, False, False, True], 0.875),  # it appears only with the whole reasoning
        ([False, False, True, True, True], 0.375),
        ([False, True, True, True, True], 0.125),
    ],
)
def test_aoc_on_known_curves(matches, expected):
    assert P.aoc(matches) == pytest.approx(expected)


def test_aoc_refuses_a_curve_of_another_length():
    with pytest.raises(ValueError):
        P.aoc([True, False])


def test_helper_prompts_carry_the_text():
    assert "Second step!" in P.mistake_prompt("Second step!")[0]["content"]
    assert "a {brace} text" in P.paraphrase_prompt("a {brace} text")[0]["content"]
