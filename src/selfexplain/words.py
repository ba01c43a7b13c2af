"""Word-level definitions shared by every style and by erasure attribution.

One definition of "word" is used everywhere, so that what a style counts, what
attribution erases and what the evaluator edits always agree:

* Text is split on whitespace, and then inside a whitespace token wherever words
  are glued by punctuation that does not belong inside a word, into *tokens*
  (``"soon...#coachella2015"`` -> ``soon`` + ``#coachella2015``, ``"90seconds,surely"``
  -> ``90seconds`` + ``surely``).  A run of apostrophes, hyphens, dots, slashes,
  colons, ``@``, ``&`` or ``*`` between letters or digits belongs inside the word
  (``don't``, ``self-driving``, ``K.R.I.T``, ``f**k``, ``AC/DC``, ``10:30``, ``AT&T``,
  ``http://t.co/x``), except two dots (``wait...what`` is two words).  Only ASCII
  punctuation and ``…`` glue: other symbols inside a token (mostly mis-decoded
  bytes in tweets) leave it whole.  The glue stays with the word before it (a
  final ``#`` or ``@`` opens the word after it), and the pieces are written back
  without the space they never had.
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

import re
import string
from dataclasses import dataclass, replace
from typing import cast

REDACTED = "[REDACTED]"

# Leading/trailing characters that are neither letters nor digits.  "[REDACTED]"
# is protected separately because its brackets would otherwise be stripped.
_EDGE = re.compile(r"^([^\w]*)(.*?)([^\w]*)$", re.DOTALL)
_REDACTED_TOKEN = re.compile(r"^([^\w\[]*)(\[REDACTED\])([^\w]*)$", re.IGNORECASE)
_REDACTED_ANY = re.compile(r"\[REDACTED\]", re.IGNORECASE)
_INNER_RUN = re.compile(r"(?<=\w)[^\w\s]+(?=\w)")
_WORD_INNER = frozenset("'’-./:@&*")
# Only ASCII punctuation (and the ellipsis character) glues words: other symbols inside a token are
# mostly mis-decoded bytes (tweets' mojibake), which must not multiply the words of a token.
_GLUE = frozenset(string.punctuation + "…")


@dataclass(frozen=True)
class Token:
    """One whitespace-delimited token split into attached punctuation and core."""

    prefix: str
    core: str
    suffix: str
    glued: bool = False  # written right after the previous token, without a space

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


def _pieces(chunk: str) -> list[str]:
    """A whitespace-free chunk cut after every run of punctuation that glues two words."""
    # The marker's brackets must not count as glue: mask it as letters first.
    masked = _REDACTED_ANY.sub(lambda m: "X" * len(m.group()), chunk)
    # A trailing '#' or '@' opens the next word (a hashtag, a mention); the rest closes the one before.
    cuts = [
        m.end() - (len(m.group()) - len(m.group().rstrip("#@")))
        for m in _INNER_RUN.finditer(masked)
        if set(m.group()) <= _GLUE and not (set(m.group()) <= _WORD_INNER and ".." not in m.group())
    ]
    return [chunk[a:b] for a, b in zip([0, *cuts], [*cuts, len(chunk)])]


def tokenize(text: str) -> list[Token]:
    out = []
    for chunk in text.split():
        for k, piece in enumerate(_pieces(chunk)):
            t = split_token(piece)
            out.append(Token(t.prefix, t.core, t.suffix, glued=k > 0))
    return out


def words(text: str) -> list[str]:
    """The words of ``text`` (cores, original case), in order."""
    return [t.core for t in tokenize(text) if t.is_word]


def word_keys(text: str) -> list[str]:
    return [t.key for t in tokenize(text) if t.is_word]


def normalize_word(word: str) -> str:
    """Comparison key of a word given on its own (a listed word, a label)."""
    return split_token(word.strip()).key


def join(tokens: list[Token]) -> str:
    out: list[str] = []
    for t in tokens:
        if out and not t.glued:
            out.append(" ")
        out.append(t.text)
    return "".join(out)


def replace_words(text: str, targets: set[str], replacement: str = REDACTED) -> str:
    """Replace every occurrence of the words whose keys are in ``targets``.

    Whitespace is normalised to single spaces, the form every edited input takes.
    """
    return join([replace(t, core=replacement) if t.is_word and t.key in targets else t for t in tokenize(text)])


def replace_positions(text: str, positions: set[int], replacement: str = REDACTED) -> str:
    """Replace the words at the given word positions (indices into ``words(text)``)."""
    return edit_positions(text, {p: replacement for p in positions})


def edit_positions(text: str, edits: dict[int, str | None]) -> str:
    """Replace (or, for ``None``, delete) the words at the given word positions.

    Attached punctuation stays when a word is replaced and goes with it when deleted.
    """
    out: list[Token | bool] = []
    w = 0
    for t in tokenize(text):
        if t.is_word:
            w += 1
            if w - 1 in edits:
                new = edits[w - 1]
                if new is None:
                    out.append(t.glued)  # deleted: the next token may inherit its spacing
                    continue
                t = replace(t, core=new)
        out.append(t)
    return join(_settle(out))


def _settle(tokens: list[Token | bool]) -> list[Token]:
    """Drop deleted tokens (given as their ``glued`` flag): a token glued to a deleted one takes over its spacing."""
    out: list[Token] = []
    inherited: bool | None = None  # spacing of the first deleted token of the current run
    for t in tokens:
        if isinstance(t, bool):
            inherited = t if inherited is None else inherited
            continue
        if inherited is not None and t.glued:
            t = replace(t, glued=inherited)
        out.append(t)
        inherited = None
    return out


def apply_word_edits(source: str, edited: str) -> tuple[str, int]:
    """The source with exactly the word edits that turn its words into ``edited``'s words, and their number.

    N is the word-level Levenshtein distance between the two word sequences
    (compared by key).  Only those N edits are applied: every word the edit
    keeps keeps the source's spelling, case and attached punctuation, so a
    change the count does not see (case, punctuation, an HTML entity) never
    reaches the classifier either.  Substituted and inserted words enter as the
    edit wrote them (with their own attached punctuation).
    """
    src_tokens = tokenize(source)
    old_keys = [t.key for t in src_tokens if t.is_word]
    new_tokens = [t for t in tokenize(edited) if t.is_word]
    subs, added, n = _align(old_keys, [t.key for t in new_tokens])
    ops = {i: None if j is None else replace(new_tokens[j], glued=False) for i, j in subs.items()}
    inserts = {i: [replace(new_tokens[j], glued=False) for j in js] for i, js in added.items()}
    out: list[Token | bool] = []
    w = 0
    for t in src_tokens:
        if t.is_word:
            if w in inserts:  # a word glued to its predecessor is written apart from what is inserted before it
                out += inserts[w]
                t = replace(t, glued=False)
            if w in ops and ops[w] is None:
                out.append(t.glued)
                w += 1
                continue
            if w in ops:
                t = replace(cast(Token, ops[w]), glued=t.glued)  # None (a deletion) was handled above
            w += 1
        out.append(t)
    out += inserts.get(len(old_keys), [])
    return join(_settle(out)), n


def _align(old: list[str], new: list[str]) -> tuple[dict[int, int | None], dict[int, list[int]], int]:
    """A minimal word-level edit script from ``old`` to ``new`` (keys), and its length (the edit distance).

    Returns the substitutions and deletions (old position -> new position, or None) and the
    insertions (old position they come before -> new positions; ``len(old)``: at the end).  The
    backtrace prefers keep/substitute, then delete, then insert, so the script is deterministic.
    """
    n, m = len(old), len(new)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (old[i - 1] != new[j - 1]))
    ops: dict[int, int | None] = {}
    inserts: dict[int, list[int]] = {}
    i, j = n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (old[i - 1] != new[j - 1]):
            if old[i - 1] != new[j - 1]:
                ops[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            ops[i - 1] = None
            i -= 1
        else:
            inserts.setdefault(i, []).insert(0, j - 1)
            j -= 1
    return ops, inserts, d[n][m]


def changed_positions(source: str, edited: str) -> set[int]:
    """Word positions of ``source`` that ``edited`` substitutes or deletes (what an edit names in the source)."""
    ops, _, _ = _align(word_keys(source), word_keys(edited))
    return set(ops)


def changed_words(old: list[str], new: list[str]) -> list[str]:
    """The words of ``new`` that an edit from ``old`` inserted or substituted (compared by key), in ``new``'s order.

    By the same minimal alignment as :func:`changed_positions`: difflib's matcher, used here before, is not minimal
    on repeated words ("so sad so sad" -> "so glad so sad" gave "so" and "glad"), and a random baseline that put
    the copied "so" back in place of a "so" left the input unchanged.
    """
    ops, inserts, _ = _align([split_token(w).key for w in old], [split_token(w).key for w in new])
    at = sorted([j for j in ops.values() if j is not None] + [j for js in inserts.values() for j in js])
    return [new[j] for j in at]


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


_MARKER_TOKEN = re.compile(r"[^\w\s]*\[REDACTED\][^\w\s]*", re.IGNORECASE)  # with attached punctuation
_MARKERS = re.compile(r"(?:\[REDACTED\])+")


def unaltered(expected: str, answer: str) -> bool:
    """Whether a redaction ``answer`` is ``expected`` (the input with the redacted words' cores as markers) up to
    whitespace, a marker's case, the punctuation attached to a redacted word (a marker for "@united" or "hate!"
    may take it in), and one marker standing for several adjacent ones (a phrase redacted at once): the strict
    reading of "without altering the remaining input"."""

    def canonical(text: str) -> str:
        return _MARKERS.sub(REDACTED, "".join(_MARKER_TOKEN.sub(REDACTED, text).split()))

    return canonical(expected) == canonical(answer)
