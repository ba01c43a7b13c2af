"""Pseudo-faithful self-explanations (paper section 3.1, table 2, table 13, appendix B).

From each training example's prediction ŷ and most influential word w*:

* attribution: ``w*``;
* redaction: the input with w* as ``[REDACTED]``;
* counterfactual: the input with w* replaced by a word the model proposes for
  the second most probable label ȳ (table 13 prompt, greedy), kept only when it
  is exactly one word, not a label word and not ``[REDACTED]``.

Each kept explanation becomes a two-turn chat in the table 2 template
(classification question, the model's own prediction, the one-word explanation
instruction, the constructed explanation).  Every dropped sample is counted
with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import words as W
from .attribution import WordAttribution
from .backends import Backend
from .evaluation import classify_chat
from .tasks import TaskSpec, render

STYLES = ("attribution", "redaction", "counterfactual")

# Drop reasons.
NO_WORDS = "no_words"
REPEATED = "w_star_repeated"  # one-word redaction/counterfactual need a word that occurs once
CF_EMPTY = "cf_word_empty"
CF_NOT_ONE_WORD = "cf_word_not_one_word"
CF_LABEL = "cf_word_is_label"
CF_REDACTED = "cf_word_is_redacted"
CF_SAME = "cf_word_is_w_star"


@dataclass
class Constructed:
    """One constructed explanation, or the reason it was dropped."""

    style: str
    explanation: str | None  # the text the model is trained to answer
    edited_input: str | None  # the input the explanation produces
    drop_reason: str | None
    counterfactual_word: str | None = None
    raw_counterfactual_word: str | None = None


def counterfactual_word_chat(task: TaskSpec, att: WordAttribution) -> list[dict[str, str]]:
    redacted = W.replace_words(att.text, {W.normalize_word(att.w_star or "")})
    prompt = render(task.prompts.counterfactual_word, redacted_input=redacted, target_label=att.second_label,
                    context=att.context)
    return [{"role": "user", "content": prompt}]


def filter_counterfactual_word(raw: str, labels: list[str], w_star: str) -> tuple[str | None, str | None]:
    """The proposed word and None, or None and the drop reason (appendix B filter)."""
    line = next((l.strip() for l in raw.strip().splitlines() if l.strip()), "")
    if line.lower().startswith(("output word:", "answer:", "word:")):
        line = line.split(":", 1)[1].strip()
    if not line:
        return None, CF_EMPTY
    if W.REDACTED.lower() in line.lower():
        return None, CF_REDACTED
    toks = [t for t in W.tokenize(line) if t.is_word]
    if len(toks) != 1:
        return None, CF_NOT_ONE_WORD
    word = toks[0].core
    if word.upper() == W.REDACTED or word.lower() == "redacted":
        return None, CF_REDACTED
    if toks[0].key in {W.normalize_word(l) for l in labels}:
        return None, CF_LABEL
    if toks[0].key == W.normalize_word(w_star):
        return None, CF_SAME
    return word, None


def construct_explanations(
    backend: Backend, task: TaskSpec, attributions: list[WordAttribution], styles: tuple[str, ...] = STYLES
) -> list[dict[str, Constructed]]:
    """Constructed explanations per style for each attribution (one generation call for the counterfactuals)."""
    need_cf = [i for i, a in enumerate(attributions)
               if "counterfactual" in styles and a.w_star is not None and a.occurrences[a.w_star_index] == 1]
    gens = backend.generate([counterfactual_word_chat(task, attributions[i]) for i in need_cf], [8] * len(need_cf))
    cf_raw = {i: g.text for i, g in zip(need_cf, gens)}
    out = []
    for i, a in enumerate(attributions):
        row: dict[str, Constructed] = {}
        for style in styles:
            row[style] = _construct_one(task, a, style, cf_raw.get(i))
        out.append(row)
    return out


def _construct_one(task: TaskSpec, a: WordAttribution, style: str, cf_raw: str | None) -> Constructed:
    if a.w_star is None:
        return Constructed(style, None, None, NO_WORDS)
    key = W.normalize_word(a.w_star)
    redacted = W.replace_words(a.text, {key})
    if style == "attribution":
        return Constructed(style, a.w_star, redacted, None)
    if a.occurrences[a.w_star_index] > 1:  # type: ignore[index]
        return Constructed(style, None, None, REPEATED)
    if style == "redaction":
        return Constructed(style, redacted, redacted, None)
    assert cf_raw is not None
    word, reason = filter_counterfactual_word(cf_raw, task.forbidden_words, a.w_star)
    if word is None:
        return Constructed(style, None, None, reason, raw_counterfactual_word=cf_raw)
    edited = W.replace_words(a.text, {key}, replacement=word)
    return Constructed(style, edited, edited, None, word, cf_raw)


def training_chat(task: TaskSpec, a: WordAttribution, style: str, explanation: str, prediction: str | None = None):
    """The table 2 template: the last assistant turn is the only one the loss sees."""
    instruction = render(task.prompts.explain(style, "one"), input=a.text, context=a.context)
    return classify_chat(task, a.text, a.context) + [
        {"role": "assistant", "content": prediction or a.prediction},
        {"role": "user", "content": instruction},
        {"role": "assistant", "content": f"Answer: {explanation}"},
    ]
