"""Word-level definitions shared by every style and by erasure attribution.

One definition of "word" is used everywhere, so that what a style counts, what
attribution erases and what the evaluator edits always agree:

* Text is split on whitespace into *tokens*.
* A token's *core* is the token without the punctuation attached at either end
  (``"hate!"`` -> ``"hate"``, ``"@user"`` -> ``"user"``, ``"(don't)"`` -> ``"don't"``).
  Punctuation inside a token stays (``don't``, ``self-driving``, ``K.R.I.T``).
* A token is a *word* when its core is not empty; pure punctuation (``-``, ``...``)
  is not a word: it is never listed, erased or counted.
* Words are compared by their case-folded core, so ``Hate``, ``hate`` and
  ``"hate,"`` are the same word.
* Replacing a word replaces its core and keeps the attached punctuation
  (``"hate!"`` -> ``"[REDACTED]!"``) at *every* occurrence of that word.
* The number of words a counterfactual edits is the word-level Levenshtein
  distance between the two word sequences (insert, delete and substitute cost 1).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

REDACTED = "[REDACTED]"

# Leading/trailing characters that are neither letters nor digits.  "[REDACTED]"
# is protected separately because its brackets would otherwise be stripped.
_EDGE = re.compile(r"^([^\w]*)(.*?)([^\w]*)$", re.DOTALL)
_REDACTED_TOKEN = re.compile(r"^([^\w\[]*)(\[REDACTED\])([^\w]*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Token:
    """One whitespace-delimited token split into attached punctuation and core."""

    prefix: str
    core: str
    suffix: str

    @property
    def text(self) -> str:
        return f"{self.prefix}{self.core}{self.suffix}"

    @property
    def is_word(self) -> bool:
        return bool(self.core)

    @property
    def is_redacted(self) -> bool:
        return self.core.upper() == REDACTED

    @property
    def key(self) -> str:
        """Comparison key: the case-folded core."""
        return self.core.casefold()


def split_token(token: str) -> Token:
    m = _REDACTED_TOKEN.match(token)
    if m:
        return Token(m.group(1), REDACTED, m.group(3))
    m = _EDGE.match(token)
    assert m is not None  # the pattern matches every string
    prefix, core, suffix = m.groups()
    # "_" counts as \w, but a core made only of underscores is decoration.
    if core.strip("_") == "":
        return Token(token, "", "")
    return Token(prefix, core, suffix)


def tokenize(text: str) -> list[Token]:
    return [split_token(t) for t in text.split()]


def words(text: str) -> list[str]:
    """The words of ``text`` (cores, original case), in order."""
    return [t.core for t in tokenize(text) if t.is_word]


def word_keys(text: str) -> list[str]:
    return [t.key for t in tokenize(text) if t.is_word]


def normalize_word(word: str) -> str:
    """Comparison key of a word given on its own (a listed word, a label)."""
    return split_token(word.strip()).key


def join(tokens: list[Token]) -> str:
    return " ".join(t.text for t in tokens)


def replace_words(text: str, targets: set[str], replacement: str = REDACTED) -> str:
    """Replace every occurrence of the words whose keys are in ``targets``.

    Whitespace is normalised to single spaces, the form every edited input takes.
    """
    out = []
    for t in tokenize(text):
        if t.is_word and t.key in targets:
            t = Token(t.prefix, replacement, t.suffix)
        out.append(t)
    return join(out)


def replace_positions(text: str, positions: set[int], replacement: str = REDACTED) -> str:
    """Replace the words at the given word positions (indices into ``words(text)``)."""
    return edit_positions(text, {p: replacement for p in positions})


def edit_positions(text: str, edits: dict[int, str | None]) -> str:
    """Replace (or, for ``None``, delete) the words at the given word positions.

    Attached punctuation stays when a word is replaced and goes with it when deleted.
    """
    out, w = [], 0
    for t in tokenize(text):
        if t.is_word:
            if w in edits:
                new = edits[w]
                w += 1
                if new is None:
                    continue
                t = Token(t.prefix, new, t.suffix)
            else:
                w += 1
        out.append(t)
    return join(out)


def changed_words(old: list[str], new: list[str]) -> list[str]:
    """The words of ``new`` that an edit from ``old`` inserted or substituted (compared by key)."""
    keys = [split_token(w).key for w in new]
    sm = difflib.SequenceMatcher(a=[split_token(w).key for w in old], b=keys, autojunk=False)
    return [new[j] for tag, _, _, j1, j2 in sm.get_opcodes() if tag in ("replace", "insert") for j in range(j1, j2)]


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two word sequences."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def unique_keys(text: str) -> list[str]:
    """Distinct word keys of ``text`` in order of first occurrence."""
    seen: dict[str, None] = {}
    for k in word_keys(text):
        seen.setdefault(k, None)
    return list(seen)
