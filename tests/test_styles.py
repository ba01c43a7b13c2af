"""Parse / check / apply for every style, on constructed cases and on real model outputs."""

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from locations import FIXTURES
from selfexplain import styles as S
from selfexplain import words as W
from selfexplain.errors import UserError

LABELS = ["Positive", "Negative"]
TEXT = "I hate waking up early, hate it!"
OBSERVED = [json.loads(l) for l in (FIXTURES / "observed_outputs.jsonl").open()]


def run(style, raw, width="one", text=TEXT, labels=LABELS):
    return S.get_style(style).evaluate(raw, text, labels, width)


def test_registry_and_unknown_style():
    assert S.style_names() == ["attribution", "redaction", "counterfactual"]
    with pytest.raises(UserError, match="unknown style 'saliency'; known styles: attribution, redaction, counterfactual$"):
        S.get_style("saliency")


def test_register_custom_style():
    @S.register_style("echo-test")
    class Echo(S.Counterfactual):
        pass

    assert S.get_style("echo-test").name == "echo-test"
    with pytest.raises(UserError, match="style 'echo-test' is already registered"):
        S.register_style("echo-test")(Echo)
    S.STYLES.remove("echo-test")


# ---- attribution --------------------------------------------------------

@pytest.mark.parametrize("raw", ["Answer: hate", "hate", "Answer: 'hate'", 'Answer: "hate".', "answer:  Hate!\n",
                                 'The most important word is "hate".', "```\nAnswer: hate\n```"])
def test_attribution_one_word_tolerant_forms(raw):
    parsed, chk = run("attribution", raw)
    assert chk.valid, (raw, chk)
    assert chk.n == 1
    assert chk.edited_input == "I [REDACTED] waking up early, [REDACTED] it!"


def test_attribution_multi_json_and_duplicates():
    parsed, chk = run("attribution", 'Sure!\n{"words": ["hate", "Hate", "early"]}', "multi")
    assert chk.valid and chk.n == 2
    assert chk.edited_input == "I [REDACTED] waking up [REDACTED], [REDACTED] it!"


def test_attribution_multi_phrase_items_and_single_quotes():
    _, chk = run("attribution", "{'words': ['waking up', 'hate']}", "multi")
    assert chk.valid and chk.n == 3


# ---- redaction ----------------------------------------------------------

def test_redaction_one_word():
    _, chk = run("redaction", "Answer: I [REDACTED] waking up early, hate it!")
    assert chk.valid and chk.n == 1
    assert chk.edited_input == "I [REDACTED] waking up early, hate it!"


def test_redaction_redacts_one_occurrence_only():
    # Unlike attribution, redaction applies exactly what the model wrote.
    _, chk = run("redaction", "Answer: I hate waking up early, [REDACTED] it!")
    assert chk.valid and chk.edited_input == "I hate waking up early, [REDACTED] it!"


def test_redaction_tolerates_case_and_quotes():
    _, chk = run("redaction", "Answer: \"i [REDACTED] waking up early, hate it\"")
    assert chk.valid and chk.n == 1


def test_redaction_phrase_marker_counts_each_word():
    _, chk = run("redaction", '{"redacted_text": "I [REDACTED] up early, hate it!"}', "multi")
    assert chk.valid and chk.n == 2
    assert chk.edited_input == "I [REDACTED] [REDACTED] up early, hate it!"


# ---- counterfactual -----------------------------------------------------

def test_counterfactual_replace_one_word():
    _, chk = run("counterfactual", "Answer: I love waking up early, hate it!")
    assert chk.valid and chk.n == 1 and chk.edited_input == "I love waking up early, hate it!"


def test_counterfactual_add_and_remove_count_as_edits():
    assert run("counterfactual", "Answer: I really hate waking up early, hate it!")[1].n == 1
    assert run("counterfactual", "Answer: I hate waking up, hate it!")[1].n == 1
    _, chk = run("counterfactual", '{"edited_text": "I love waking up early, love it!"}', "multi")
    assert chk.valid and chk.n == 2


def test_counterfactual_forbidden_label_and_marker():
    assert run("counterfactual", "Answer: I positive waking up early, hate it!")[1].reason == S.USES_LABEL
    assert run("counterfactual", "Answer: I [REDACTED] waking up early, hate it!")[1].reason == S.USES_REDACTED


def test_counterfactual_label_already_in_input_is_allowed():
    text = "Stay positive, the exam is hard"
    _, chk = run("counterfactual", "Answer: Stay positive, the exam is easy", text=text)
    assert chk.valid and chk.n == 1


# ---- real outputs of the default model -------------------------------------

@pytest.mark.parametrize("case", OBSERVED, ids=[f"{c['style']}-{c['width']}-{i}" for i, c in enumerate(OBSERVED)])
def test_observed_outputs(case):
    """Answers the embedded Qwen2.5-Coder-0.5B gave on tweets, with hand-checked verdicts."""
    _, chk = run(case["style"], case["raw"], case["width"], text=case["input"])
    exp = case["expected"]
    assert (chk.valid, chk.reason, chk.n, chk.edited_input) == (exp["valid"], exp["reason"], exp["n"], exp["edited_input"])


def test_observed_outputs_cover_every_style_width_and_reason():
    seen = {(c["style"], c["width"]) for c in OBSERVED}
    assert seen == {(s, w) for s in S.style_names() for w in S.WIDTHS}
    reasons = {c["expected"]["reason"] for c in OBSERVED}
    assert {None, S.NOT_IN_INPUT, S.UNPARSEABLE, S.NO_REDACTION, S.ALTERED_TEXT, S.USES_REDACTED,
            S.USES_LABEL, S.WRONG_COUNT} <= reasons


# ---- random baseline ----------------------------------------------------------

def _checked(style, raw, text, width="one"):
    return S.get_style(style).evaluate(raw, text, ["Positive", "Negative"], width)[1]


def test_random_attribution_redacts_as_many_distinct_words():
    import random

    text = "so so happy with this lovely day"
    chk = _checked("attribution", '{"words": ["happy", "lovely"]}', text, "multi")
    seen = set()
    for seed in range(30):
        out = S.get_style("attribution").random_edit(text, chk, random.Random(seed))
        redacted = {w for w, o in zip(text.split(), out.split()) if o == "[REDACTED]"}
        assert len(redacted) == 2  # two distinct words, every occurrence ("so so" counts once)
        seen.add(frozenset(redacted))
    assert len(seen) > 5  # actually random


def test_random_redaction_redacts_as_many_positions():
    import random

    text = "the cat sat on the mat"
    chk = _checked("redaction", "Answer: the [REDACTED] sat on the mat", text)
    out = S.get_style("redaction").random_edit(text, chk, random.Random(1))
    assert out.count("[REDACTED]") == 1 and len(out.split()) == 6


def test_random_counterfactual_puts_the_new_words_at_random_positions():
    import random

    text = "i really hate this movie"
    chk = _checked("counterfactual", '{"edited_text": "i really love this film"}', text, "multi")
    assert chk.n == 2
    outs = {S.get_style("counterfactual").random_edit(text, chk, random.Random(s)) for s in range(40)}
    for out in outs:
        words = out.split()
        assert len(words) == 5 and {"love", "film"} <= set(words)
    assert len(outs) > 5
    deletion = _checked("counterfactual", "Answer: i hate this movie", text)
    out = S.get_style("counterfactual").random_edit(text, deletion, random.Random(0))
    assert len(out.split()) == 4  # a pure deletion stays a deletion of one random word


def test_a_counterfactual_baseline_on_repeated_words_edits_the_input():
    """Found by the property below: on "so sad so sad" -> "so glad so sad" the new words were taken by difflib's
    alignment, which is not minimal on repeated words ("so", "glad"), and the baseline that put "so" in place of a
    "so" left the input as it was, an unchanged baseline counted like any other."""
    import random

    text = "so sad so sad"
    chk = _checked("counterfactual", '{"edited_text": "so glad so sad"}', text, "multi")
    assert W.changed_words(W.words(text), W.words("so glad so sad")) == ["glad"]
    outs = {S.get_style("counterfactual").random_edit(text, chk, random.Random(seed)) for seed in range(20)}
    assert outs == {"glad sad so sad", "so sad glad sad"}


@pytest.mark.parametrize(
    "text,raw,width",
    [
        # Real counterfactuals of the committed cpu-medium study whose baselines left the input unchanged: an
        # added "#2hrs35minOnHold" put over the tweet's own, a "drinking" put over "Drinking" (same key).
        (
            "@USAirways is the @comcast of airlines #2hrs35minOnHold",
            "Answer: @USAirways is the @comcast of airlines #2hrs35minOnHold #2hrs35minOnHold",
            "one",
        ),
        ("Drinking and draking? For sure #Coachella2015", '{"edited_text": "Drinking and drinking? For sure #Coachella2015"}',
         "multi"),
    ],
    ids=["added-copy", "same-key"],
)
def test_a_counterfactual_baseline_never_puts_a_word_over_its_own_key(text, raw, width):
    import random

    chk = _checked("counterfactual", raw, text, width)
    for seed in range(100):
        out = S.get_style("counterfactual").random_edit(text, chk, random.Random(seed))
        assert out is not None and W.changed_positions(text, out), (seed, out)


def test_a_counterfactual_baseline_that_edits_is_drawn_as_before():
    """Draws that edit keep their generator's sequence: the fix changes only the draws that edited nothing."""
    import random

    text = "@USAirways is the @comcast of airlines #2hrs35minOnHold"
    chk = _checked("counterfactual", "Answer: @USAirways is the @virgin of airlines #2hrs35minOnHold", text, "one")
    outs = [S.get_style("counterfactual").random_edit(text, chk, random.Random(seed)) for seed in range(5)]
    assert outs == [  # as drawn before the fix
        "@USAirways is the @comcast virgin airlines #2hrs35minOnHold",
        "@USAirways virgin the @comcast of airlines #2hrs35minOnHold",
        "@virgin is the @comcast of airlines #2hrs35minOnHold",
        "@USAirways virgin the @comcast of airlines #2hrs35minOnHold",
        "@USAirways virgin the @comcast of airlines #2hrs35minOnHold",
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["so", "sad", "rain", "the", "day", "ok"]), min_size=1, max_size=8),
       st.sampled_from(["attribution", "redaction", "counterfactual"]), st.data())
def test_a_random_baseline_never_edits_what_the_explanation_names(tokens, style, data):
    """Over random inputs and explanations of every style (several words, repeated words): the baseline edits only
    words the explanation neither names nor edits, as many as it does, so it never equals the explanation's own
    edit; where the input has too few such words there is none."""
    import json
    import random

    text = " ".join(tokens)
    picked = data.draw(st.sets(st.integers(0, len(tokens) - 1), min_size=1, max_size=min(3, len(tokens))))
    if style == "attribution":
        raw = json.dumps({"words": sorted({tokens[i] for i in picked})})
    elif style == "redaction":
        raw = json.dumps({"redacted_text": " ".join("[REDACTED]" if i in picked else t for i, t in enumerate(tokens))})
    else:
        raw = json.dumps({"edited_text": " ".join("glad" if i in picked else t for i, t in enumerate(tokens))})
    chk = _checked(style, raw, text, "multi")
    assume(chk.valid)
    named = {W.word_keys(text)[p] for p in W.changed_positions(text, chk.edited_input)}
    out = S.get_style(style).random_edit(text, chk, random.Random(data.draw(st.integers(0, 1 << 30))))
    others = [i for i, t in enumerate(tokens) if t not in named]
    if out is None:
        assert len(set(tokens[i] for i in others) if style == "attribution" else others) < min(chk.n, len(tokens))
        return
    assert out != chk.edited_input
    edited = W.changed_positions(text, out)
    assert edited and not {tokens[p] for p in edited} & named
    if style == "attribution":
        assert len({tokens[p] for p in edited}) == chk.n  # N distinct words, every occurrence
    else:
        assert len(edited) == chk.n


# ---- the Answer: marker ------------------------------------------------------------

def test_repeated_answer_marker_takes_the_last():
    # Real reply of the default model (see observed_outputs.jsonl): the first marker is empty of an answer.
    parsed, _ = run("attribution", "Answer: Answer: Glorious")
    assert parsed.value == ["Glorious"]


def test_echoed_marker_in_quotes_is_not_an_answer():
    raw = "Answer one word following 'Answer:'. Do not explain the answer.\nAnswer: hate"
    assert run("attribution", raw)[0].value == ["hate"]
    assert run("attribution", "Answer: 'hate'")[0].value == ["hate"]  # a quoted answer is still an answer


def test_words_glued_by_punctuation_can_be_named_alone():
    text = "See you soon...#coachella2015 _ôëÇ http://t.co/YEGOxb0irO"
    _, chk = run("attribution", "Answer: soon", text=text)
    assert chk.valid and chk.edited_input == "See you [REDACTED]...#coachella2015 _ôëÇ http://t.co/YEGOxb0irO"
    _, chk = run("attribution", "Answer: soon...#coachella2015", text=text)
    assert not chk.valid and chk.reason == S.WRONG_COUNT and chk.n == 2


def test_counterfactual_case_only_edit_is_unchanged():
    # The record: only case and an HTML entity differed; N = 0 once the entity is decoded at load.
    text = "I was REALLY hoping Big K.R.I.T & Frank Ocean would be apart of #Coachella2015"
    _, chk = run("counterfactual", "Answer: I was really hoping Big K.R.I.T & Frank Ocean would be apart of #Coachella2015",
                 text=text)
    assert not chk.valid and chk.reason == S.UNCHANGED


def test_counterfactual_applies_only_counted_edits():
    _, chk = run("counterfactual", "Answer: i LOVE waking up early hate it", text="I hate waking up early, hate it!")
    assert chk.valid and chk.n == 1 and chk.edited_input == "I LOVE waking up early, hate it!"


def test_snli_counterfactual_may_use_answer_words_but_not_relation_names():
    from selfexplain.tasks import get_task

    snli = get_task("snli").forbidden_words
    text = "A man is sleeping on a couch."
    _, chk = run("counterfactual", "Answer: No man is sleeping on a couch.", text=text, labels=snli)
    assert chk.valid and chk.n == 1
    _, chk = run("counterfactual", "Answer: A man is sleeping on a contradiction.", text=text, labels=snli)
    assert chk.reason == S.USES_LABEL
    # Sentiment's verbalizers stay forbidden (the paper's example).
    assert get_task("sentiment140").forbidden_words == ["Positive", "Negative"]


# ---- strict redaction validity -------------------------------------------------------

# Real one-word redactions of the default model and its trained variants (docs/results/cpu-medium records), all
# valid by words; strict: the rest of the input unaltered but for whitespace and a redacted word's own "@"/"#".
STRICT_CASES = [
    ("Thanks @united for writing back. To assist you can return the bag you lost & clean up the feces sprinkled in "
     "your bathroom. Too much to ask?",
     "Answer: Thanks [REDACTED] for writing back. To assist you can return the bag you lost & clean up the feces "
     "sprinkled in your bathroom. Too much to ask?", True),  # the handle redacted with its "@"
    ("#Coachella2015 got everybody like http://t.co/TquAI0NSo3",
     "Answer: [REDACTED] got everybody like http://t.co/TquAI0NSo3", True),
    ("@JetBlue you can't beat jetblue in space's matter http://t.co/NRpWmGyv3e",
     "Answer: JetBlue you can't beat jetblue in space's matter [REDACTED]", False),  # another handle lost its "@"
    ("@USAirways yes I did thank you! They did a great job turning the flight in jan !",
     "Answer: @USAirways yes I did thank you! They did a great job turning the flight in [REDACTED]", False),  # "!" gone
    ("@united Keep the flights cheap and early/on time and you are good. Flew @AmericanAir and Cancelled Flightled "
     "my flight 4 times last month. United>",
     "Answer: United Keep the flights cheap and early/on time and you are good. Flew [REDACTED] and Cancelled "
     "Flightled my flight 4 times last month. United", False),  # "@united" -> "United", the final ">" dropped
]


@pytest.mark.parametrize("text, raw, strict", STRICT_CASES)
def test_strict_redaction_validity_is_recorded_beside_the_word_rule(text, raw, strict):
    _, chk = run("redaction", raw, text=text)
    assert chk.valid and chk.n == 1 and chk.strict is strict
    assert "[REDACTED]" in chk.edited_input  # the classifier sees the original with the word redacted, either way


def test_strict_redaction_takes_a_phrase_under_one_marker_and_any_case():
    text = "I really hate it."
    _, chk = run("redaction", '{"redacted_text": "I [redacted] it."}', "multi", text=text)
    assert chk.valid and chk.n == 2 and chk.strict is True
    _, dropped = run("redaction", '{"redacted_text": "I [REDACTED] it"}', "multi", text=text)
    assert dropped.valid and dropped.strict is False  # the final "." belongs to "it", which was not redacted
    assert run("attribution", "Answer: hate", text=text)[1].strict is None


# ---- invalid explanations, each with the reason it is excluded -----------

@pytest.mark.parametrize(
    "style,raw,width,reason,n",
    [
        ("attribution", "Answer: negative", "one", S.NOT_IN_INPUT, None),
        ("attribution", "Answer: hate, early", "one", S.WRONG_COUNT, 2),
        ("attribution", "Answer:   ", "one", S.EMPTY, None),
        ("attribution", '{"words": ["hate", ', "multi", S.UNPARSEABLE, None),
        ("redaction", "Answer: The text is negative.", "one", S.NO_REDACTION, None),
        ("redaction", "Answer: I [REDACTED] waking up late, hate it!", "one", S.ALTERED_TEXT, None),
        ("redaction", "Answer: I [REDACTED] waking up [REDACTED], hate it!", "one", S.WRONG_COUNT, 2),
        ("counterfactual", "Answer: i hate waking up early hate it", "one", S.UNCHANGED, None),
    ],
    ids=["attribution-not-in-input", "attribution-two-words", "attribution-empty", "attribution-multi-unparseable",
         "redaction-no-marker", "redaction-alters-text", "redaction-two-words", "counterfactual-unchanged"],
)
def test_an_invalid_explanation_names_its_reason(style, raw, width, reason, n):
    _, chk = run(style, raw, width)
    assert not chk.valid and chk.reason == reason
    if n is not None:
        assert chk.n == n
