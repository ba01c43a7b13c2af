"""The self-consistency check as a per-sample reward (for RL and preference training).

:func:`judge` takes explanations already written for examples and judges each exactly as the evaluator
does (:func:`selfexplain.evaluation.evaluate_chunk`): the style's parse and check, the edit applied to
the input, the edited input classified in a fresh chat by label scoring, faithful when the predicted
label changes.  The classifier is whatever backend it is given: the policy being trained (GRPO), the
model that wrote the explanations (DPO pairs), or another model (faithfulness to a reference).

The reward of one explanation (:class:`RewardSettings`): ``invalid`` when it breaks the style or word-count
condition (the lowest), otherwise ``faithful`` or ``unfaithful`` by the binary verdict, plus ``graded``
times the probability shift p(ŷ|x) - p(ŷ|x'), the dense graded measure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

from .backends import Backend
from .evaluation import check_explanation, classify
from .tasks import TaskSpec
from .tasks.data import Example


@dataclass(frozen=True)
class RewardSettings:
    invalid: float = -1.0
    unfaithful: float = 0.0
    faithful: float = 1.0
    graded: float = 0.0  # weight of the shift p(ŷ|x) - p(ŷ|x'), in [-1, 1], added to valid explanations

    def __post_init__(self) -> None:
        if not self.invalid < min(self.unfaithful, self.faithful) - abs(self.graded):
            raise ValueError(
                f"an invalid explanation must get the lowest reward: invalid ({self.invalid}) < "
                f"min(unfaithful, faithful) - |graded| ({min(self.unfaithful, self.faithful) - abs(self.graded)})"
            )


@dataclass(frozen=True)
class Judgement:
    """One explanation judged: what the evaluator would record, and the reward."""

    valid: bool
    reason: str | None
    edited_input: str | None
    prediction: str  # the classifier's label for the original input
    new_prediction: str | None  # ... for the edited input (valid explanations only)
    faithful: bool | None
    shift: float | None  # p(ŷ|x) - p(ŷ|x') under the classifier
    reward: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Item:
    """An explanation to judge: the example it explains, its style and width, the reply's text."""

    example: Example
    style: str
    width: str
    text: str


def judge(
    backend: Backend, task: TaskSpec, items: list[Item], settings: RewardSettings = RewardSettings()
) -> list[Judgement]:
    """Every item judged by the self-consistency check, with ``backend`` as the classifier."""
    if not items:
        return []
    checked = [check_explanation(task, it.style, it.text, it.example.text, it.width)[1] for it in items]
    # The original inputs (once each) and the valid edits, in one scoring call.
    originals = list(dict.fromkeys((it.example.text, it.example.context) for it in items))
    edited = [k for k, c in enumerate(checked) if c.valid]
    scored = classify(
        backend, task, originals + [(cast(str, checked[k].edited_input), items[k].example.context) for k in edited]
    )
    before = dict(zip(originals, scored[: len(originals)]))
    after = dict(zip(edited, scored[len(originals) :]))
    out = []
    for k, (it, chk) in enumerate(zip(items, checked)):
        pred = before[(it.example.text, it.example.context)]
        new = after.get(k)
        if new is None:
            out.append(Judgement(False, chk.reason, None, pred.label, None, None, None, settings.invalid))
            continue
        faithful = new.label != pred.label
        shift = pred.probs[pred.label] - new.probs[pred.label]
        reward = (settings.faithful if faithful else settings.unfaithful) + settings.graded * shift
        out.append(Judgement(True, None, chk.edited_input, pred.label, new.label, faithful, shift, reward))
    return out
