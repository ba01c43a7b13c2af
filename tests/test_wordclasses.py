"""Word classes of explanation targets, on real tweets and the committed cpu-medium records."""

import json
from pathlib import Path

import pytest

from locations import COMMITTED_STUDY
from selfexplain import words as W
from selfexplain.wordclasses import class_counts, explanation_class, explanation_targets, fmt_classes, token_class

STUDY = COMMITTED_STUDY

# Whitespace tokens of real tweets (the tweets task's held-out data, as in the committed records).
TOKENS = [
    ("@united", "handle"), ("(@united)", "handle"), ("@JackieJohnsonLA:", "handle"), ("#Coachella2015", "hashtag"),
    ("#fail", "hashtag"), ("http://t.co/TquAI0NSo3", "url"), ("https://t.co/x", "url"), ("www.jetblue.com", "url"),
    ("4333", "number"), ("3:30", "number"), ("$100", "number"), ("90s", "number"), ("3rd", "number"),
    ("the", "stop"), ("I'm", "content"), ("not", "stop"), ("LOVE", "content"), ("flight", "content"),
    ("...", "punctuation"), ("!!!", "punctuation"), (":)", "punctuation"), ("😂", "emoji"), ("❤", "emoji"),
]


@pytest.mark.parametrize("token, expected", TOKENS)
def test_token_classes(token, expected):
    assert token_class(token) == expected


def test_targets_are_what_the_explanation_edits():
    text = "@united Keep the flights cheap @united #fail http://t.co/x"
    # An attribution of "united" redacts both occurrences (the handle's "@" stays outside the word).
    edited = W.replace_words(text, {"united"})
    assert [t.text for t in explanation_targets(text, edited)] == ["@united", "@united"]
    assert explanation_class(text, edited) == "handle"
    assert explanation_class(text, "@united Keep the flights cheap @united http://t.co/x") == "hashtag"  # deleted
    assert explanation_class(text, text.replace("cheap", "[REDACTED]").replace("#fail", "#[REDACTED]")) == "mixed"
    # An edit that only inserts targets the inserted words.
    assert explanation_class(text, "@united Keep the flights super cheap @united #fail http://t.co/x") == "content"
    assert explanation_class(text, "@united Keep the flights very cheap @united #fail http://t.co/x") == "stop"
    assert explanation_class(text, None) is None


def _cell(condition):
    study = json.loads((STUDY / "study.json").read_text())
    cell = next(c for c in study["cells"] if c["condition"] == condition and c["eval_task"] == "tweets"
                and c["width"] == "one")
    path = STUDY / "runs" / Path(cell["run_dir"]).name / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_committed_sft_models_valid_explanations_by_class():
    """Read from the records of cpu-medium's attribution-trained model (the issue's counts by hand): 37 of its 72
    valid counterfactuals delete an @handle, and 37 of its 45 valid redactions redact a URL, handle or hashtag."""
    records = _cell("attribution")
    cf = class_counts(r for r in records if r["style"] == "counterfactual")
    assert sum(c["n"] for c in cf.values()) == 72 and cf["handle"]["n"] == 37
    red = class_counts(r for r in records if r["style"] == "redaction")
    assert sum(c["n"] for c in red.values()) == 45
    assert red["url"]["n"] + red["handle"]["n"] + red["hashtag"]["n"] == 37
    assert list(red) == ["content", "handle", "hashtag", "url", "number"]  # in the classes' order
    assert fmt_classes(red).startswith("content 16% (") and " · handle 29% (" in fmt_classes(red)
    assert fmt_classes({}) == "-" and "(" not in fmt_classes(red, faithfulness=False)
    att = fmt_classes(class_counts(r for r in records if r["style"] == "attribution"))
    assert att.startswith("content 76% (0.15) · stop 20% (0.06) · handle <1% (0.00)")  # 2 of 532
