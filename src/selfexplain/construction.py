"""Pseudo-faithful self-explanations (paper section 3.1, table 2, table 13, appendix B).

From each training example's prediction ŷ and most influential word w*:

* attribution: ``w*``;
* redaction: the input with w* as ``[REDACTED]``;
* counterfactual: the input with w* replaced by a word the model proposes for
  the second most probable label ȳ (table 13 prompt, greedy), kept only when it
  is exactly one word, not a label word and not ``[REDACTED]`` (the paper's
  filter), and, beyond the paper, not a word of the input: a copy of a
  neighbouring word ("uber cool" -> "uber Uber") is a failure of the proposer,
  not a counterfactual.  When the greedy word is a label word, w* or another
  word of the input, the next candidate is tried: the model's most probable
  first tokens of the same reply (the top ``candidates``), in order, the first
  that is a whole English word (:func:`selfexplain.wordnet.is_english_word`) and
  passes the filter and is not a piece of the ``[REDACTED]`` marker ("Red" was 30
  of the first 400 such words).  Only single-token words can be found this way;
  the greedy word may be any word.

Each kept explanation becomes a two-turn chat in the table 2 template
(classification question, the model's own prediction, the one-word explanation
instruction, the constructed explanation).  Every dropped sample is counted
with its reason; every kept one records whether its edit flips the model's
prediction (``flips``, set by the caller that re-classifies counterfactuals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import words as W
from .attribution import WordAttribution
from .backends import Backend
from .evaluation import classify_chat
from .tasks import TaskSpec, render
from .wordnet import is_english_word

STYLES = ("attribution", "redaction", "counterfactual")

# Drop reasons.
NO_WORDS = "no_words"
REPEATED = "w_star_repeated"  # one-word redaction/counterfactual need a word that occurs once
CF_EMPTY = "cf_word_empty"
CF_NOT_ONE_WORD = "cf_word_not_one_word"
CF_LABEL = "cf_word_is_label"
CF_REDACTED = "cf_word_is_redacted"
CF_SAME = "cf_word_is_w_star"
CF_COPY = "cf_word_in_input"  # another word of the input (or of its context)
CF_NO_CANDIDATE = "cf_no_candidate"  # the greedy word was rejected and none of the ranked candidates passes
RETRIED = (CF_LABEL, CF_SAME, CF_COPY)  # the rejections that send construction to the ranked candidates
CANDIDATES = 20  # ranked first tokens tried after a rejected greedy word (OpenAI's top_logprobs cap)
MARKER = W.REDACTED.strip("[]").casefold()  # a ranked token that opens it is a piece of the marker
# The rule ranked candidates follow, in every construct run's configuration: runs under an earlier rule
# (copies rejected, "Red" taken as a word) are not reused.
RANKED_RULE = "whole English words, no piece of [REDACTED]"


@dataclass
class Constructed:
    """One constructed explanation, or the reason it was dropped."""

    style: str
    explanation: str | None  # the text the model is trained to answer
    edited_input: str | None  # the input the explanation produces
    drop_reason: str | None
    counterfactual_word: str | None = None
    raw_counterfactual_word: str | None = None  # the greedy reply to the table 13 prompt
    greedy_rejected: str | None = None  # why the greedy word was not used, when ranked candidates were tried
    candidate_rank: int | None = None  # 1-based rank among the reply's first tokens of the word used instead
    flips: bool | None = None  # the edit changes the model's prediction (None: dropped)


@dataclass(frozen=True)
class Proposal:
    """The counterfactual word chosen for one input, or why there is none."""

    raw: str  # the greedy reply
    word: str | None
    reason: str | None
    greedy_rejected: str | None = None
    rank: int | None = None


def counterfactual_word_chat(task: TaskSpec, att: WordAttribution) -> list[dict[str, str]]:
    redacted = W.replace_words(att.text, {W.normalize_word(att.w_star or "")})
    prompt = render(
        task.prompts.counterfactual_word, redacted_input=redacted, target_label=att.second_label, context=att.context
    )
    return [{"role": "user", "content": prompt}]


def input_words(att: WordAttribution) -> frozenset[str]:
    """Comparison keys of every word of the input and of its context (a copy of any of them is rejected)."""
    return frozenset(W.normalize_word(w) for w in att.words) | frozenset(
        t.key for t in W.tokenize(att.context or "") if t.is_word
    )


def filter_counterfactual_word(
    raw: str, labels: list[str], w_star: str, inputs: frozenset[str] = frozenset()
) -> tuple[str | None, str | None]:
    """The proposed word and None, or None and the drop reason: the appendix B filter, then (``inputs``: the
    input's word keys) no copy of a word of the input, case and punctuation aside."""
    line = next((s.strip() for s in raw.strip().splitlines() if s.strip()), "")
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
    if toks[0].key in {W.normalize_word(lab) for lab in labels}:
        return None, CF_LABEL
    if toks[0].key == W.normalize_word(w_star):
        return None, CF_SAME
    if toks[0].key in inputs:
        return None, CF_COPY
    return word, None


def ranked_word(
    top: list[tuple[str, float]], labels: list[str], w_star: str, inputs: frozenset[str]
) -> tuple[str, int] | None:
    """The first of the reply's ranked first tokens that is a whole English word and passes the filter,
    with its 1-based rank; None when none does."""
    for rank, (text, _) in enumerate(top, 1):
        text = text.strip()
        if MARKER.startswith(text.casefold()):  # "Red": the reply opening "[REDACTED]"/"Redacted", not a word
            continue
        if is_english_word(text) and filter_counterfactual_word(text, labels, w_star, inputs)[0] is not None:
            return text, rank
    return None


def propose_words(
    backend: Backend, task: TaskSpec, atts: list[WordAttribution], candidates: int = CANDIDATES
) -> list[Proposal]:
    """One counterfactual word per attribution: the greedy word, or, where it is rejected as a label word,
    w* or a copy, the best of the ``candidates`` ranked first tokens (none tried with 0)."""
    chats = [counterfactual_word_chat(task, a) for a in atts]
    gens = backend.generate(chats, [8] * len(atts))
    out = []
    for a, g in zip(atts, gens):
        word, reason = filter_counterfactual_word(g.text, task.forbidden_words, a.w_star or "", input_words(a))
        out.append(Proposal(g.text, word, reason))
    retry = [i for i, p in enumerate(out) if candidates and p.reason in RETRIED]
    tops = backend.top_tokens([chats[i] for i in retry], candidates) if retry else []
    for i, top in zip(retry, tops):
        a, p = atts[i], out[i]
        found = ranked_word(top, task.forbidden_words, a.w_star or "", input_words(a))
        out[i] = (
            Proposal(p.raw, found[0], None, p.reason, found[1])
            if found
            else Proposal(p.raw, None, CF_NO_CANDIDATE, p.reason)
        )
    return out


def construct_explanations(
    backend: Backend,
    task: TaskSpec,
    attributions: list[WordAttribution],
    styles: tuple[str, ...] = STYLES,
    candidates: int = CANDIDATES,
) -> list[dict[str, Constructed]]:
    """Constructed explanations per style for each attribution (one generation call for the counterfactuals,
    one ranking call for the rejected ones)."""
    need_cf = [i for i, a in enumerate(attributions) if "counterfactual" in styles and a.w_star_occurrences == 1]
    proposals = dict(zip(need_cf, propose_words(backend, task, [attributions[i] for i in need_cf], candidates)))
    out = []
    for i, a in enumerate(attributions):
        row: dict[str, Constructed] = {}
        for style in styles:
            row[style] = _construct_one(a, style, proposals.get(i))
        out.append(row)
    return out


def _construct_one(a: WordAttribution, style: str, proposal: Proposal | None) -> Constructed:
    if a.w_star is None:
        return Constructed(style, None, None, NO_WORDS)
    key = W.normalize_word(a.w_star)
    redacted = W.replace_words(a.text, {key})
    if style == "attribution":
        return Constructed(style, a.w_star, redacted, None, flips=a.w_star_flips)
    if a.w_star_occurrences > 1:
        return Constructed(style, None, None, REPEATED)
    if style == "redaction":
        return Constructed(style, redacted, redacted, None, flips=a.w_star_flips)
    assert proposal is not None
    extra: dict[str, Any] = {
        "raw_counterfactual_word": proposal.raw,
        "greedy_rejected": proposal.greedy_rejected,
        "candidate_rank": proposal.rank,
    }
    if proposal.word is None:
        return Constructed(style, None, None, proposal.reason, **extra)
    edited = W.replace_words(a.text, {key}, replacement=proposal.word)
    return Constructed(style, edited, edited, None, proposal.word, **extra)


def training_chat(task: TaskSpec, a: WordAttribution, style: str, explanation: str, prediction: str | None = None):
    """The table 2 template: the last assistant turn is the only one the loss sees."""
    instruction = render(task.prompts.explain(style, "one"), input=a.text, context=a.context)
    return classify_chat(task, a.text, a.context) + [
        {"role": "assistant", "content": prediction or a.prediction},
        {"role": "user", "content": instruction},
        {"role": "assistant", "content": f"Answer: {explanation}"},
    ]
