"""Explanation styles: parse a model's answer, check it, count N, apply it.

Every function here is pure (text in, dataclass out) so the whole faithfulness
protocol except the model calls can be tested without a model.  A style is a
class registered by name with :func:`register_style`; the built-in ones are the
paper's three (section 2): ``attribution``, ``redaction`` and ``counterfactual``.

Widths (section 3.3 and 4.2): ``one`` asks for a one-word explanation in the
``Answer: ...`` form and keeps only explanations with N = 1; ``multi`` asks for
JSON and keeps any N >= 1 (the number-of-words condition is dropped, N is
recorded for the per-N breakdown).
"""

from __future__ import annotations

import ast
import json
import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar, Literal

from . import words as W
from .registry import Registry

Width = Literal["one", "multi"]
WIDTHS: tuple[str, ...] = ("one", "multi")


@dataclass(frozen=True)
class Parsed:
    """What could be read from the raw answer: a string, a word list, or nothing."""

    value: str | list[str] | None
    error: str | None = None  # a named reason when value is None


@dataclass(frozen=True)
class Checked:
    """Outcome of the style and number-of-words conditions."""

    valid: bool
    reason: str | None  # None when valid
    n: int | None  # words listed / redacted / edited, when it could be counted
    edited_input: str | None  # the input the explanation produces, when valid
    # Redaction only: valid and, beyond the words, every character outside the redacted spans as in the input
    # (up to whitespace).  Recorded beside ``valid``, which compares words (see Redaction.check).
    strict: bool | None = None

    def rejected(self, reason: str) -> "Checked":
        """This explanation made invalid by a later condition (its count kept, strict validity lost)."""
        return Checked(False, reason, self.n, None, False if self.strict is not None else None)


# Reasons, named so reports can count them.
UNPARSEABLE = "unparseable"
EMPTY = "empty"
NOT_IN_INPUT = "word_not_in_input"
NO_REDACTION = "no_redaction"
ALTERED_TEXT = "altered_text"
USES_REDACTED = "uses_redacted"
USES_LABEL = "uses_label"
UNCHANGED = "unchanged"
WRONG_COUNT = "wrong_word_count"
#: Draws of a counterfactual baseline before an input is counted as having none (every draw left it unchanged).
MAX_REDRAWS = 100

_ANSWER = re.compile(r"answer\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»"
_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)
_QUOTED = re.compile(r'["“”]([^"“”]+)["“”]')  # double quotes only: ' is also an apostrophe


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _strip_answer(raw: str) -> str:
    """The first non-empty line after the last ``Answer:`` marker that has one (or of the whole reply).

    The *last* marker, because models repeat it ("Answer: Answer: Glorious"); a
    marker in quotes is the prompt echoed ("... following 'Answer:'."), not an answer.
    """
    text = raw.strip()
    marked = False
    for m in reversed(list(_ANSWER.finditer(text))):
        colon = text.index(":", m.start())
        if m.start() > 0 and text[m.start() - 1] in _QUOTES and text[colon + 1 : colon + 2] in tuple(_QUOTES):
            continue
        marked = True
        rest = _first_line(text[m.end() :])
        if rest:
            return rest
    return "" if marked else _first_line(text)


def _strip_quotes(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _json_objects(raw: str):
    """Yield every JSON-ish object found in ``raw``, tolerant of fences and quotes."""
    text = _FENCE.sub("", raw)
    decoder = json.JSONDecoder()
    for start in [i for i, c in enumerate(text) if c == "{"]:
        chunk = text[start:]
        try:
            obj, _ = decoder.raw_decode(chunk)
        except json.JSONDecodeError:
            end = chunk.find("}")
            if end < 0:
                continue
            try:  # single-quoted Python-style dicts are a common near miss
                obj = ast.literal_eval(chunk[: end + 1])
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
        if isinstance(obj, dict):
            yield obj


def parse_json_field(raw: str, key: str) -> Parsed:
    for obj in _json_objects(raw):
        for k, v in obj.items():
            if str(k).strip().lower() == key:
                return Parsed(v)
    return Parsed(None, UNPARSEABLE)


class Style(ABC):
    """One explanation style.  Subclasses implement the three pure steps."""

    name: ClassVar[str]
    json_key: ClassVar[str]

    def parse(self, raw: str, width: Width) -> Parsed:
        if width == "multi":
            return self._parse_multi(raw)
        text = _strip_answer(raw)
        if not text:
            return Parsed(None, EMPTY)
        return self._parse_one(text)

    @abstractmethod
    def _parse_one(self, text: str) -> Parsed: ...

    @abstractmethod
    def _parse_multi(self, raw: str) -> Parsed: ...

    @abstractmethod
    def check(self, parsed: Parsed, text: str, labels: list[str], width: Width) -> Checked:
        """Style condition, N, and the edited input (section 3.3).

        ``labels`` are the words that name a label (a task's ``forbidden_words``), which a
        counterfactual may not introduce.
        """

    def evaluate(self, raw: str, text: str, labels: list[str], width: Width) -> tuple[Parsed, Checked]:
        parsed = self.parse(raw, width)
        if parsed.value is None:
            return parsed, Checked(False, parsed.error, None, None)
        checked = self.check(parsed, text, labels, width)
        if checked.valid and width == "one" and checked.n != 1:
            checked = checked.rejected(WRONG_COUNT)
        return parsed, checked

    @abstractmethod
    def random_edit(self, text: str, checked: Checked, rng: random.Random) -> str | None:
        """The random baseline of a valid explanation: as many words, chosen at random among the input's other
        words (see :func:`other_positions`), applied the same way; None where the input has too few of them."""


def other_positions(text: str, checked: Checked) -> list[int]:
    """Word positions a random baseline may edit: every word of ``text`` but the words the explanation names or
    edits (by key, so no other occurrence of them either) and words already ``[REDACTED]``.

    Drawn from all words, the baseline could be the explanation's own edit (40 of the 532 attribution
    baselines of cpu-medium's SFT model were), and the comparison partly one of the explanation with itself.
    """
    keys = W.word_keys(text)
    named = {keys[p] for p in W.changed_positions(text, checked.edited_input or "")}
    redacted = W.REDACTED.casefold()
    return [i for i, k in enumerate(keys) if k not in named and k != redacted]


#: Every explanation style a run can name (``--style``).
STYLES: Registry[Style] = Registry("style")


def register_style(name: str, *, replace: bool = False) -> Callable[[type[Style]], type[Style]]:
    """Class decorator: make a style available by name (CLI ``--style``); its docstring's first line describes it.

    Args:
        name: the style's name.
        replace: replace a style registered under ``name``.

    Returns:
        The decorator (it returns the class unchanged).

    Raises:
        UserError: ``name`` is already registered and ``replace`` is false.
    """

    def wrap(cls: type[Style]) -> type[Style]:
        cls.name = name
        STYLES.add(name, cls(), (cls.__doc__ or "").strip().split("\n")[0], replace=replace)
        return cls

    return wrap


def get_style(name: str) -> Style:
    """The style registered as ``name``.

    Args:
        name: a registered style's name.

    Returns:
        The style (one instance per style).

    Raises:
        UserError: unknown style (the message lists the known ones).
    """
    return STYLES.get(name)


def style_names() -> list[str]:
    return STYLES.names()


@register_style("attribution")
class Attribution(Style):
    """List the important input words; applied by redacting them everywhere."""

    json_key = "words"

    def _parse_one(self, text: str) -> Parsed:
        text = _strip_quotes(text)
        quoted = _QUOTED.findall(text)
        if len(text.split()) > 1 and len(quoted) == 1:
            text = quoted[0]  # 'The most important word is "hate".'
        # "hate." / "hate," : one word with sentence punctuation; "soon...#tag": two words (see words).
        items = W.words(text)
        return Parsed(items) if items else Parsed(None, EMPTY)

    def _parse_multi(self, raw: str) -> Parsed:
        p = parse_json_field(raw, self.json_key)
        if p.value is None:
            return p
        value = p.value if isinstance(p.value, list) else [p.value]
        items = [str(v) for v in value if isinstance(v, (str, int, float))]
        # An item may be a phrase ("press conference"): each of its words counts.
        flat = [w for item in items for w in W.words(item)]
        return Parsed(flat) if flat else Parsed(None, EMPTY)

    def check(self, parsed: Parsed, text: str, labels: list[str], width: Width) -> Checked:
        listed = list(dict.fromkeys(W.normalize_word(w) for w in parsed.value))  # type: ignore[union-attr]
        listed = [w for w in listed if w]
        present = set(W.word_keys(text))
        if any(w not in present for w in listed):
            return Checked(False, NOT_IN_INPUT, len(listed), None)
        return Checked(True, None, len(listed), W.replace_words(text, set(listed)))

    def random_edit(self, text: str, checked: Checked, rng: random.Random) -> str | None:
        keys = W.word_keys(text)
        others = list(dict.fromkeys(keys[i] for i in other_positions(text, checked)))  # distinct, in order
        if len(others) < (checked.n or 0):
            return None
        return W.replace_words(text, set(rng.sample(others, checked.n or 0)))


class SentenceStyle(Style):
    """A style whose answer is a rewritten input (one line after 'Answer:', or a JSON string field)."""

    def _parse_one(self, text: str) -> Parsed:
        return Parsed(_strip_quotes(text))

    def _parse_multi(self, raw: str) -> Parsed:
        p = parse_json_field(raw, self.json_key)
        if p.value is None or not isinstance(p.value, str):
            return Parsed(None, UNPARSEABLE)
        return Parsed(p.value.strip()) if p.value.strip() else Parsed(None, EMPTY)


@register_style("redaction")
class Redaction(SentenceStyle):
    """Rewrite the input with the important words as [REDACTED]."""

    json_key = "redacted_text"

    def check(self, parsed: Parsed, text: str, labels: list[str], width: Width) -> Checked:
        """Valid when the words outside the markers are the input's, in order (compared by key: case, attached
        punctuation and symbols such as a handle's "@" are not compared).  The input the classifier then sees
        is the original with those words redacted, so what was not compared never reaches it.  ``strict``
        also asks every other character to be the input's (whitespace aside)."""
        redacted = str(parsed.value)
        out = [t for t in W.tokenize(redacted) if t.is_word]
        src = [t for t in W.tokenize(text) if t.is_word]
        if W.REDACTED not in redacted.upper():
            return Checked(False, NO_REDACTION, 0, None, False)
        positions = _align_redactions([t.key for t in src], out)
        if positions is None:
            return Checked(False, ALTERED_TEXT, None, None, False)
        edited = W.replace_positions(text, positions)
        return Checked(True, None, len(positions), edited, W.unaltered(edited, redacted))

    def random_edit(self, text: str, checked: Checked, rng: random.Random) -> str | None:
        others = other_positions(text, checked)
        if len(others) < (checked.n or 0):
            return None
        return W.replace_positions(text, set(rng.sample(others, checked.n or 0)))


def _align_redactions(src: list[str], out: list[W.Token]) -> set[int] | None:
    """Source word positions covered by [REDACTED] tokens, or None if other words changed.

    Each [REDACTED] stands for one or more consecutive source words (models
    sometimes redact a phrase with a single marker); every other output word
    must equal the source word at that place.  Solved as a small DP over
    (source position, output position) so the choice of span is never greedy.
    """
    n, m = len(src), len(out)
    # best[i][j]: set of redacted positions aligning src[i:] with out[j:], or None.
    memo: dict[tuple[int, int], frozenset[int] | None] = {}

    def go(i: int, j: int) -> frozenset[int] | None:
        if (i, j) in memo:
            return memo[i, j]
        res: frozenset[int] | None = None
        if j == m:
            res = frozenset() if i == n else None
        elif out[j].is_redacted:
            best = None
            for k in range(i + 1, n + 1):  # marker covers src[i:k]
                rest = go(k, j + 1)
                if rest is not None:
                    cand = rest | frozenset(range(i, k))
                    if best is None or len(cand) < len(best):
                        best = cand
            res = best
        elif i < n and out[j].key == src[i]:
            res = go(i + 1, j + 1)
        memo[i, j] = res
        return res

    if n * m > 250_000:  # pathological lengths: only the one-to-one alignment
        if n != m or any(not o.is_redacted and o.key != s for s, o in zip(src, out)):
            return None
        return {i for i, o in enumerate(out) if o.is_redacted}
    result = go(0, 0)
    return set(result) if result is not None else None


@register_style("counterfactual")
class Counterfactual(SentenceStyle):
    """Edit the input so the prediction flips; N is the word edit distance."""

    json_key = "edited_text"

    def check(self, parsed: Parsed, text: str, labels: list[str], width: Width) -> Checked:
        edited = str(parsed.value)
        if W.REDACTED.lower() in edited.lower():
            return Checked(False, USES_REDACTED, None, None)
        new_keys, old_keys = W.word_keys(edited), W.word_keys(text)
        label_keys = {W.normalize_word(lab) for lab in labels}
        if any(k in label_keys for k in set(new_keys) - set(old_keys)):
            return Checked(False, USES_LABEL, None, None)
        # Only the counted word edits reach the classifier: a change of case, punctuation or an
        # HTML entity that N does not count is not applied either (see words.apply_word_edits).
        applied, n = W.apply_word_edits(text, edited)
        if n == 0:
            return Checked(False, UNCHANGED, 0, None)
        return Checked(True, None, n, applied)

    def random_edit(self, text: str, checked: Checked, rng: random.Random) -> str | None:
        """The counterfactual's new words put at random positions among the words it did not edit (deleting the
        rest of its N edits there).

        Keeping the new words makes the baseline ask whether the model chose *where*
        to edit well, not whether any new word moves the prediction.
        """
        old = W.words(text)
        new = W.changed_words(old, W.words(checked.edited_input or ""))
        others = other_positions(text, checked)
        need = min(checked.n or 0, len(old))
        if len(others) < need:
            return None
        # A new word put over a word of the same key ("#united" over "@united", "drinking" over "Drinking") edits
        # nothing: such a draw is drawn again from the same generator, so every draw that edits stays as it was
        # (and a run re-judged is the run made today).  An input where no draw edits has no baseline.
        for _ in range(MAX_REDRAWS):
            rng.shuffle(new)
            positions = rng.sample(others, need)
            edit = W.edit_positions(text, {p: new[i] if i < len(new) else None for i, p in enumerate(positions)})
            if W.changed_positions(text, edit):
                return edit
        return None
