"""Table 6: the most frequent lemmatised words of faithful explanations.

Which words an explanation "uses" depends on the style: the listed words
(attribution), the words replaced by [REDACTED] (redaction), and the words a
counterfactual inserted or substituted, with one ``DELETION`` entry per
removed word.  Words are lemmatised by :func:`selfexplain.wordnet.lemma`.
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import TYPE_CHECKING, Any

from .. import words as W
from ..wordnet import lemma as _lemma

if TYPE_CHECKING:
    from .study import StudyData
    from .table import Table

DELETION = "DELETION"
TOP_K = 10


def lemma(word: str) -> str:
    """The word's WordNet lemma; DELETION stays a marker."""
    return _lemma(word, keep=DELETION.casefold())


def explanation_words(record: dict[str, Any]) -> list[str]:
    """The words a valid explanation used (surface forms; DELETION for a removed word)."""
    style = record["style"]
    if style == "attribution":
        parsed = record["parsed"]
        return list(parsed) if isinstance(parsed, list) else [parsed]
    old = W.words(record["input"])
    new = W.words(record["edited_input"] or "")
    if style == "redaction":
        # edited_input keeps every other word in place, so positions line up.
        return [o for o, n in zip(old, new) if n.upper() == W.REDACTED and o.upper() != W.REDACTED]
    sm = difflib.SequenceMatcher(a=[w.casefold() for w in old], b=[w.casefold() for w in new], autojunk=False)
    out: list[str] = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag in ("replace", "insert"):
            out += new[j1:j2]
        removed = (i2 - i1) - (j2 - j1)  # old words left without a new word in their place
        if tag in ("replace", "delete") and removed > 0:
            out += [DELETION] * removed
    return out


def top_words(records: list[dict[str, Any]], k: int = TOP_K) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for r in records:
        if r["valid"] and r["faithful"]:
            counts.update(DELETION if w == DELETION else lemma(w) for w in explanation_words(r))
    return counts.most_common(k)


def lexicon_table(study: "StudyData") -> "Table":
    from .study import condition_name
    from .table import Table

    t = Table(
        "table6_frequent_words",
        "Table 6: most frequent lemmatised words in faithful explanations (one-word)",
        ["task", "condition", "style", "faithful", "top words (count)"],
        note="Attribution: listed words; redaction: redacted words; counterfactual: inserted or substituted "
        f"words, {DELETION} for each removed word.  WordNet lemmatiser (noun, else verb).",
    )
    for cell in study.cells:
        if cell.width != "one":
            continue
        for style in study.styles:
            recs = list(cell.style_records(style).values())
            faithful = [r for r in recs if r["valid"] and r["faithful"]]
            if not recs:
                continue
            cond = condition_name(cell.condition) + (
                f" ({cell.train_task})" if cell.train_task and cell.train_task != cell.eval_task else ""
            )
            t.rows.append(
                {
                    "task": cell.eval_task,
                    "condition": cond,
                    "style": style,
                    "faithful": len(faithful),
                    "top words (count)": ", ".join(f"{w} ({n})" for w, n in top_words(faithful)) or "-",
                }
            )
    return t
