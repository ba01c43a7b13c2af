"""The self-consistency faithfulness check (paper sections 2 and 3.3).

For every example: classify it (label scoring, greedy = argmax), ask for a
self-explanation in the *same* chat after the model's own answer, parse and
check the explanation, apply it to the input, and classify the edited input in
a *fresh* single-turn chat.  A valid explanation is faithful when the
prediction changes.  Examples are processed in fixed chunks so that a run can
be killed and resumed with identical results (see :mod:`selfexplain.store`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, TypeVar, cast

from . import styles as S
from .backends import Backend, Chat, Generation
from .layout import MAX_N
from .measures import cell_measures, erasure_rank
from .stats import codes_of, ratio_ci
from .store import RunStore
from .tasks import TaskSpec, render
from .tasks.data import Example
from .wordclasses import class_counts, explanation_class, explanation_targets, token_class


@dataclass
class SampleRecord:
    """One example explained in one style: everything needed to audit the verdict."""

    chunk: int
    sample_id: str
    task: str
    style: str
    width: str
    input: str
    context: str | None
    gold: str
    prediction: str
    label_probs: dict[str, float]  # normalised over the task's labels
    label_logprobs: dict[str, float]  # raw log p(label | prompt)
    raw_explanation: str
    explanation_truncated: bool
    parsed: str | list[str] | None
    valid: bool
    reason: str | None
    n: int | None
    edited_input: str | None
    new_prediction: str | None
    new_label_probs: dict[str, float] | None
    faithful: bool | None
    # Redaction: valid under the strict rule too (styles.Checked.strict); None for the other styles.
    valid_strict: bool | None = None
    # The class of the words a valid explanation targets (selfexplain.wordclasses): content, stop, handle, ...
    target_class: str | None = None
    # The random baseline (same number of words, chosen at random among the words the explanation does not
    # name or edit, applied the same way); ``no_random``: why a valid explanation has none.
    random_input: str | None = None
    random_prediction: str | None = None
    random_faithful: bool | None = None
    random_label_probs: dict[str, float] | None = None
    no_random: str | None = None
    # Erasure agreement (evaluate --erasure): the model's own most influential word and the normalised
    # rank, in its erasure ranking, of the words the explanation (and its baseline) change.
    w_star: str | None = None
    erasure_rank: float | None = None
    names_w_star: bool | None = None
    random_erasure_rank: float | None = None
    random_names_w_star: bool | None = None

    @property
    def correct(self) -> bool:
        return self.prediction == self.gold


def classify_chat(task: TaskSpec, text: str, context: str | None) -> Chat:
    return [{"role": "user", "content": render(task.prompts.classify, input=text, context=context)}]


def explain_chat(task: TaskSpec, ex: Example, prediction: str, style: str, width: str) -> Chat:
    prompt = render(task.prompts.explain(style, width), input=ex.text, context=ex.context)
    return classify_chat(task, ex.text, ex.context) + [
        {"role": "assistant", "content": prediction},
        {"role": "user", "content": prompt},
    ]


@dataclass(frozen=True)
class Prediction:
    label: str
    probs: dict[str, float]
    logprobs: dict[str, float]


def to_prediction(logprobs: list[float], labels: list[str]) -> Prediction:
    top = max(logprobs)
    z = sum(math.exp(v - top) for v in logprobs)
    probs = {lab: math.exp(v - top) / z for lab, v in zip(labels, logprobs)}
    # Ties resolve to the first label, as argmax does.
    best = labels[max(range(len(labels)), key=lambda i: (logprobs[i], -i))]
    return Prediction(best, probs, dict(zip(labels, logprobs)))


def classify(backend: Backend, task: TaskSpec, items: list[tuple[str, str | None]]) -> list[Prediction]:
    if not items:
        return []
    lps = backend.label_logprobs([classify_chat(task, t, c) for t, c in items], task.labels)
    return [to_prediction(lp, task.labels) for lp in lps]


def token_budget(style: str, width: str, text: str) -> int:
    """Generous caps: replies end at the end-of-turn token long before them."""
    n = len(text.split())
    if style == "attribution":
        return 24 if width == "one" else min(512, 32 + 6 * n)
    return min(768, 48 + 3 * n)


# The random baseline's rule, in every evaluate run's configuration (so in its folder's hash).  ``True`` (runs
# made before this rule): drawn from all the input's words, so it could repeat the explanation's own edit.
RANDOM_BASELINE = "other words"
NO_OTHER_WORDS = "too few other words"  # the input has fewer words than N outside those the explanation names


EXCLUDED_TARGET = "excluded_target"  # the explanation targets a word of a class the task excludes
TOO_LONG = "too_long"  # the explanation prompt and its reply would not fit the model's context window
LABEL_ROOM = 16  # tokens kept for a label after a classification prompt


def over_window(backend: Backend, chats: list[Chat], room: list[int]) -> list[bool]:
    """Which chats, with ``room`` tokens of reply each, exceed the backend's context window (none where the
    backend does not know its window or cannot count): past it a model still answers, but its answer means
    nothing, so such a prompt is not run."""
    window = backend.context_window()
    lengths = backend.prompt_lengths(chats) if window and chats else None
    if lengths is None or window is None:
        return [False] * len(chats)
    return [n + r > window for n, r in zip(lengths, room)]


def fits_classification(backend: Backend, task: TaskSpec, examples: list[Example]) -> list[bool]:
    """Which examples' classification prompts leave room for a label in the model's context window."""
    chats = [classify_chat(task, ex.text, ex.context) for ex in examples]
    return [not o for o in over_window(backend, chats, [LABEL_ROOM] * len(chats))]


def check_explanation(task: TaskSpec, style: str, raw: str, text: str, width: str) -> tuple[S.Parsed, S.Checked]:
    """The style's parse and conditions (section 3.3), then the task's excluded word classes: an explanation that
    targets any word of such a class (``exclude_targets: [handle]``) is invalid."""
    parsed, checked = S.get_style(style).evaluate(raw, text, task.forbidden_words, cast(S.Width, width))
    if checked.valid and task.exclude_targets:
        targets = {token_class(t) for t in explanation_targets(text, checked.edited_input or "")}
        if targets & set(task.exclude_targets):
            return parsed, checked.rejected(EXCLUDED_TARGET)
    return parsed, checked


def random_rng(seed: int, task: str, sample_id: str, style: str, width: str) -> random.Random:
    """One generator per (sample, style, width): a record's baseline never depends on chunking or order."""
    return random.Random(f"{seed}|{task}|{sample_id}|{style}|{width}")


def evaluate_chunk(
    backend: Backend,
    task: TaskSpec,
    chunk: int,
    examples: list[Example],
    styles: list[str],
    width: str,
    random_seed: int | None = None,
    max_new_tokens: int | None = None,
    attributor: Callable[[list[Example]], list[Any]] | None = None,
) -> list[SampleRecord]:
    """One chunk of examples in every style; ``attributor`` (erasure attribution of a list of examples,
    as :func:`selfexplain.attribution.attribute` gives it) adds the erasure-agreement fields."""
    preds = classify(backend, task, [(ex.text, ex.context) for ex in examples])
    jobs = [(style, i) for style in styles for i in range(len(examples))]
    chats = [explain_chat(task, examples[i], preds[i].label, style, width) for style, i in jobs]
    budgets = [min(token_budget(style, width, examples[i].text), max_new_tokens or 1 << 30) for style, i in jobs]
    too_long = over_window(backend, chats, budgets)
    run = [k for k in range(len(jobs)) if not too_long[k]]
    replies = dict(zip(run, backend.generate([chats[k] for k in run], [budgets[k] for k in run])))
    gens = [replies.get(k, Generation("", 0, False)) for k in range(len(jobs))]
    checked = [
        (S.Parsed(None, TOO_LONG), S.Checked(False, TOO_LONG, None, None))
        if too_long[k]
        else check_explanation(task, style, gen.text, examples[i].text, width)
        for k, ((style, i), gen) in enumerate(zip(jobs, gens))
    ]
    to_reclassify = [k for k, (_, c) in enumerate(checked) if c.valid]
    edited = {k: cast(str, checked[k][1].edited_input) for k in to_reclassify}  # valid: never None
    randomized: dict[int, str] = {}
    no_random: set[int] = set()
    if random_seed is not None:
        for k in to_reclassify:
            style, i = jobs[k]
            rng = random_rng(random_seed, task.name, examples[i].id, style, width)
            edit = S.get_style(style).random_edit(examples[i].text, checked[k][1], rng)
            if edit is None:
                no_random.add(k)
            else:
                randomized[k] = edit
    # One scoring call for the explanations' and the baselines' edited inputs.
    order = list(edited.items()) + list(randomized.items())
    scored = classify(backend, task, [(t, examples[jobs[k][1]].context) for k, t in order])
    new_preds = dict(zip(edited, scored[: len(edited)]))
    random_preds = dict(zip(randomized, scored[len(edited) :]))
    atts = attributor(examples) if attributor else None
    records = []
    for k, ((style, i), gen, (parsed, chk)) in enumerate(zip(jobs, gens, checked)):
        ex, pred, new, rnd = examples[i], preds[i], new_preds.get(k), random_preds.get(k)
        agreement: dict[str, Any] = {}
        if atts is not None:
            a = atts[i]
            agreement["w_star"] = a.w_star
            if chk.valid:
                agreement["erasure_rank"], agreement["names_w_star"] = erasure_rank(
                    ex.text, chk.edited_input or "", a.words, a.influence, a.w_star
                )
            if k in randomized:
                agreement["random_erasure_rank"], agreement["random_names_w_star"] = erasure_rank(
                    ex.text, randomized[k], a.words, a.influence, a.w_star
                )
        records.append(
            SampleRecord(
                chunk=chunk,
                sample_id=ex.id,
                task=task.name,
                style=style,
                width=width,
                input=ex.text,
                context=ex.context,
                gold=ex.label,
                prediction=pred.label,
                label_probs=pred.probs,
                label_logprobs=pred.logprobs,
                raw_explanation=gen.text,
                explanation_truncated=gen.truncated,
                parsed=parsed.value,
                valid=chk.valid,
                reason=chk.reason,
                n=chk.n,
                edited_input=chk.edited_input,
                new_prediction=new.label if new else None,
                new_label_probs=new.probs if new else None,
                faithful=(new.label != pred.label) if new else None,
                valid_strict=chk.strict,
                target_class=explanation_class(ex.text, chk.edited_input) if chk.valid else None,
                random_input=randomized.get(k),
                random_prediction=rnd.label if rnd else None,
                random_faithful=(rnd.label != pred.label) if rnd else None,
                random_label_probs=rnd.probs if rnd else None,
                no_random=NO_OTHER_WORDS if k in no_random else None,
                **agreement,
            )
        )
    return records


T = TypeVar("T")


def chunks(examples: list[T], size: int) -> list[list[T]]:
    return [examples[i : i + size] for i in range(0, len(examples), size)]


def run_evaluation(
    backend: Backend,
    task: TaskSpec,
    examples: list[Example],
    styles: list[str],
    width: str,
    store: RunStore,
    batch_size: int,
    on_chunk: Callable[[int], None] | None = None,
    random_seed: int | None = None,
    max_new_tokens: int | None = None,
    attributor: Callable[[list[Example]], list[Any]] | None = None,
    annotate: Callable[[list[Example], list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate all examples (skipping chunks already on disk) and return every record.

    With ``random_seed``, every valid explanation also gets its random baseline;
    ``max_new_tokens`` caps every reply (smoke runs; explanations cut short are flagged truncated).
    ``annotate`` adds fields to a chunk's records before they are stored (``evaluate --reference-model``).
    """

    def compute(c: int, part: list[Example]) -> list[dict[str, Any]]:
        records = [
            asdict(r)
            for r in evaluate_chunk(backend, task, c, part, styles, width, random_seed, max_new_tokens, attributor)
        ]
        if annotate:
            annotate(part, records)
        return records

    return store.process(chunks(examples, batch_size), lambda part: len(part) * len(styles), compute, on_chunk)


def reference_measures(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Faithfulness to a reference model (records annotated by ``evaluate --reference-model``), over the valid
    explanations: the share whose edit changes the reference's label, and the share faithful to both."""
    valid = [r for r in records if r["valid"] and r.get("reference")]
    ci = ratio_ci(codes_of([True] * len(valid), [r["reference"]["faithful"] for r in valid]))
    both = sum(bool(r["faithful"] and r["reference"]["faithful"]) for r in valid)
    return {
        "model": next((r["reference"]["model"] for r in valid), None),
        "n": len(valid),
        "faithfulness": ci.value,
        "ci": [ci.low, ci.high],
        "faithful_to_both": both,
    }


@dataclass
class StyleSummary:
    style: str
    n: int
    n_valid: int
    n_faithful: int
    faithfulness: float | None
    invalid_reasons: dict[str, int]
    truncated: int
    per_n: dict[int, dict[str, float | int | None]] = field(default_factory=dict)
    faithfulness_ci: tuple[float | None, float | None] = (None, None)
    # Random baseline over the same valid samples (None where the run had none).
    random_faithfulness: float | None = None
    random_ci: tuple[float | None, float | None] = (None, None)
    n_random: int = 0
    n_no_random: int = 0  # valid explanations without a baseline: too few other words in their input
    # Valid explanations per class of the words they target, {class: {"n", "faithful"}} (wordclasses).
    target_classes: dict[str, dict[str, int]] = field(default_factory=dict)
    # Shift, explanation vs its random baseline (paired, with a verdict), erasure agreement: see measures.
    measures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    task: str
    width: str
    n_samples: int
    accuracy: float
    accuracy_ci: tuple[float | None, float | None]
    label_counts: dict[str, int]
    prediction_counts: dict[str, int]
    styles: list[StyleSummary]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(records: Iterable[dict[str, Any]]) -> Summary:
    records = list(records)
    if not records:
        raise ValueError("no records to summarise")
    samples: dict[str, dict[str, Any]] = {}
    by_style: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        samples.setdefault(r["sample_id"], r)
        by_style.setdefault(r["style"], []).append(r)
    correct = sum(r["prediction"] == r["gold"] for r in samples.values())
    out = []
    for style, rs in by_style.items():
        valid = [r for r in rs if r["valid"]]
        faithful = sum(bool(r["faithful"]) for r in valid)
        fci = ratio_ci(codes_of([r["valid"] for r in rs], [r["faithful"] for r in rs]))
        with_random = [r for r in valid if r.get("random_prediction") is not None]
        rci = ratio_ci(codes_of([True] * len(with_random), [r["random_faithful"] for r in with_random]))
        per_n: dict[int, dict[str, float | int | None]] = {}
        for n in range(1, MAX_N + 1):
            group = [r for r in valid if r["n"] == n]
            k = sum(bool(r["faithful"]) for r in group)
            per_n[n] = {"n": len(group), "faithful": k, "faithfulness": k / len(group) if group else None}
        out.append(
            StyleSummary(
                style=style,
                n=len(rs),
                n_valid=len(valid),
                n_faithful=faithful,
                faithfulness=faithful / len(valid) if valid else None,
                invalid_reasons=dict(Counter(r["reason"] for r in rs if not r["valid"]).most_common()),
                truncated=sum(bool(r["explanation_truncated"]) for r in rs),
                per_n=per_n,
                faithfulness_ci=(fci.low, fci.high),
                random_faithfulness=rci.value,
                random_ci=(rci.low, rci.high),
                n_random=rci.n,
                n_no_random=sum(bool(r.get("no_random")) for r in valid),
                target_classes=class_counts(valid),
                measures={
                    **cell_measures(rs),
                    **({"reference": reference_measures(rs)} if any(r.get("reference") for r in rs) else {}),
                },
            )
        )
    first = records[0]
    aci = ratio_ci(codes_of([True] * len(samples), [r["prediction"] == r["gold"] for r in samples.values()]))
    return Summary(
        task=first["task"],
        width=first["width"],
        n_samples=len(samples),
        accuracy=correct / len(samples),
        accuracy_ci=(aci.low, aci.high),
        label_counts=dict(Counter(r["gold"] for r in samples.values())),
        prediction_counts=dict(Counter(r["prediction"] for r in samples.values())),
        styles=out,
    )
