"""What an explanation's words are: content word, stop word, @handle, #hashtag, URL, number, punctuation or emoji.

A one-word explanation that names a tweet's @handle is valid as often as one that names its sentiment word, and
on 583 of cpu-medium's 600 held-out tweets there is one to name; the class of the words an explanation targets
shows what its validity and faithfulness rest on.  The rules, first match wins, on a whitespace token as
:mod:`selfexplain.words` splits it (attached punctuation apart from the word's core):

* ``url``: starts with ``http://``, ``https://`` or ``www.``, or holds ``://``;
* ``handle``: an ``@`` right before the core (``@united``, ``(@united``);
* ``hashtag``: a ``#`` right before the core;
* ``number``: digits, with inner ``.,:/-`` (``4333``, ``3:30``, ``1.5``) and an ordinal or plural ending
  (``3rd``, ``90s``); a currency or percent sign stays outside the core;
* ``emoji``: no letter or digit, and a pictographic symbol (Unicode category So, as emoji and dingbats are);
* ``punctuation``: no letter or digit (``...``, ``!!!``, ``:)``);
* ``stop``: scikit-learn's English stop-word list (318 function words), compared case-folded;
* ``content``: any other word.

An explanation's class is its targets' one class, or ``mixed`` (multi-word explanations spanning classes);
:func:`explanation_targets` says which words those are, as the evaluator applies the explanation.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable

from . import words as W

CLASSES = ("content", "stop", "handle", "hashtag", "url", "number", "punctuation", "emoji")
MIXED = "mixed"

_URL = re.compile(r"^(?:https?://|www\.)|://", re.IGNORECASE)
_NUMBER = re.compile(r"^\d+(?:[.,:/\-]\d+)*(?:st|nd|rd|th|s)?$", re.IGNORECASE)


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def token_class(token: W.Token | str) -> str:
    """The class of one whitespace token (or of a :class:`~selfexplain.words.Token` from a longer text)."""
    t = W.split_token(token) if isinstance(token, str) else token
    text = t.text
    if _URL.search(text):
        return "url"
    if t.core:
        if t.prefix.endswith("@"):
            return "handle"
        if t.prefix.endswith("#"):
            return "hashtag"
    if not any(ch.isalnum() for ch in text):
        return "emoji" if any(unicodedata.category(ch) == "So" for ch in text) else "punctuation"
    if _NUMBER.match(t.core):
        return "number"
    if t.key in stop_words():
        return "stop"
    return "content"


def explanation_targets(text: str, edited: str) -> list[W.Token]:
    """The words of ``text`` an explanation edited into ``edited`` redacts, substitutes or deletes; for an edit that
    only inserts, the inserted words (tokens of ``edited``)."""
    tokens = [t for t in W.tokenize(text) if t.is_word]
    changed = sorted(W.changed_positions(text, edited))
    if changed:
        return [tokens[p] for p in changed]
    new = set(W.word_keys(edited)) - {t.key for t in tokens}
    return [t for t in W.tokenize(edited) if t.is_word and t.key in new]


@lru_cache(maxsize=1 << 16)
def explanation_class(text: str, edited: str | None) -> str | None:
    """The one class of an explanation's targets, ``mixed`` where they differ, None without an edit (memoised:
    a report classifies each older record once per table that shows classes)."""
    if not edited:
        return None
    classes = {token_class(t) for t in explanation_targets(text, edited)}
    if not classes:
        return None
    return classes.pop() if len(classes) == 1 else MIXED


def record_class(record: dict) -> str | None:
    """A record's explanation class: as the evaluator recorded it, or from its input and edited input (records
    made before classes were recorded); None for an invalid explanation."""
    if not record.get("valid"):
        return None
    if record.get("target_class") is not None:
        return record["target_class"]
    return explanation_class(record.get("input") or "", record.get("edited_input"))


def class_counts(records: Iterable[dict]) -> dict[str, dict[str, int]]:
    """Valid explanations per class, ``{class: {"n": valid, "faithful": faithful}}``, in :data:`CLASSES` order
    (then ``mixed``), classes without explanations left out."""
    counts: dict[str, dict[str, int]] = {}
    for r in records:
        c = record_class(r)
        if c is not None:
            entry = counts.setdefault(c, {"n": 0, "faithful": 0})
            entry["n"] += 1
            entry["faithful"] += bool(r.get("faithful"))
    order = {c: i for i, c in enumerate((*CLASSES, MIXED))}
    return dict(sorted(counts.items(), key=lambda kv: order[kv[0]]))


def fmt_classes(counts: dict[str, dict[str, int]], faithfulness: bool = True) -> str:
    """``content 62% (0.10) · handle 30% (0.02)``: each class's share of the valid explanations and, with
    ``faithfulness``, the share of them that are faithful; ``-`` without valid explanations."""
    total = sum(c["n"] for c in counts.values())
    if not total:
        return "-"
    parts = []
    for name, c in counts.items():
        share = 100 * c["n"] / total
        part = f"{name} {'<1' if share < 0.5 else f'{share:.0f}'}%"
        if faithfulness:
            part += f" ({c['faithful'] / c['n']:.2f})"
        parts.append(part)
    return " · ".join(parts)
