"""Per-sample outcome codes and the paired comparisons every table makes (faithfulness, accuracy), with the
estimand panel beside each.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .. import estimands as E
from ..stats import HIT, INVALID, MISS, PairedResult, paired_test
from .study import RecordSet


def faith_codes(records: dict[str, dict[str, Any]], ids: Iterable[str], key: str = "faithful") -> np.ndarray:
    """Per-sample outcome codes for faithfulness (``key='random_faithful'`` for the baseline)."""
    out = []
    for i in ids:
        r = records[i]
        if not r["valid"] or (key == "random_faithful" and r.get("random_prediction") is None):
            out.append(INVALID)
        else:
            out.append(HIT if r[key] else MISS)
    return np.array(out, dtype=np.int8)


def accuracy_codes(samples: dict[str, dict[str, Any]], ids: Iterable[str]) -> np.ndarray:
    return np.array([HIT if samples[i]["prediction"] == samples[i]["gold"] else MISS for i in ids], dtype=np.int8)


def faith_pair(before: RecordSet, after: RecordSet, style: str) -> tuple[PairedResult, np.ndarray, np.ndarray]:
    """The paired change in ``style``'s faithfulness on the samples both ran on, and each side's codes."""
    b, a = before.style_records(style), after.style_records(style)
    common = sorted(set(b) & set(a))
    bc, ac = faith_codes(b, common), faith_codes(a, common)
    return paired_test(bc, ac), bc, ac


def compare(
    before: RecordSet, after: RecordSet, style: str, untrained: RecordSet | None = None
) -> tuple[E.Panel, np.ndarray, np.ndarray]:
    """The estimand panel of ``style``'s change on the samples both ran on, binned by the confidence of
    ``untrained`` (default: ``before``), and each side's codes."""
    b, a = before.style_records(style), after.style_records(style)
    ids = sorted(set(b) & set(a))
    bc, ac = faith_codes(b, ids), faith_codes(a, ids)
    binned_by = (untrained or before).samples()
    conf = [confidence(binned_by.get(i)) for i in ids]
    panel = E.panel(
        E.Side(bc, [b[i]["prediction"] for i in ids]), E.Side(ac, [a[i]["prediction"] for i in ids]), known(conf)
    )
    return panel, bc, ac


def known(values: list[float | None]) -> list[float] | None:
    """``values`` when every one is known, else None (the confidence bins need all of a comparison's samples)."""
    return None if any(v is None for v in values) else [v for v in values if v is not None]


def confidence(record: dict[str, Any] | None) -> float | None:
    """The probability of the predicted label (None for records without label probabilities)."""
    if not record or not record.get("label_probs"):
        return None
    return float(record["label_probs"][record["prediction"]])


PANEL_COLUMNS = [
    *[f"{e}_{k}" for e in E.ESTIMANDS for k in ("diff", "low", "high", "p")],
    "all_discordant",
    "both_valid_discordant",
    "label_rates",
    "by_confidence",
]


def panel_columns(panel: E.Panel) -> dict[str, Any]:
    """A panel's numbers as CSV columns (:data:`PANEL_COLUMNS`)."""
    out: dict[str, Any] = {}
    for name, est in panel.estimates.items():
        out.update(
            {f"{name}_diff": est.difference, f"{name}_low": est.low, f"{name}_high": est.high, f"{name}_p": est.p_value}
        )
    pair = lambda c: None if c is None else f"{c[0]} vs {c[1]}"  # noqa: E731
    out["all_discordant"] = pair(panel.estimates[E.ALL].discordant)
    out["both_valid_discordant"] = pair(panel.estimates[E.BOTH_VALID].discordant)
    out["label_rates"] = panel.estimates[E.LABEL_BALANCED].detail
    out["by_confidence"] = "; ".join(f"{name} n={est.n}: {E.fmt_estimate(est)}" for name, est in panel.by_confidence)
    return out


def accuracy_pair(before: RecordSet, after: RecordSet) -> PairedResult:
    """The paired change in accuracy on the samples both classified."""
    b, a = before.samples(), after.samples()
    common = sorted(set(b) & set(a))
    return paired_test(accuracy_codes(b, common), accuracy_codes(a, common))
