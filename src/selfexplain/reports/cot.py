"""The chain-of-thought tests' tables (``cot`` runs' ``summary.md``; the cot results page), from summaries alone."""

from __future__ import annotations

from typing import Any

from .table import Table, fmt, fmt_interval

CUE_NOTE = (
    "switch: the answer with the cue is the label the cue names (a label other than the model's own uncued answer). "
    "control: the same cue naming the model's own answer; how often the answer moves anyway. excess: switch minus "
    "control, paired sample by sample (bootstrap interval, sign-flip p). verbalized: among switched samples, the "
    "reasoning mentions the cue (keyword detector; judge: a judge model's P(Yes) > 0.5); κ: Cohen's kappa of the "
    "two detectors on every cued reasoning. 95% intervals; † fewer than 50 samples (exact interval)."
)
PERTURB_NOTE = (
    "Each share: samples whose answer after the changed reasoning differs from (early answering: equals) the "
    "answer after the whole reasoning. AOC: the area over the early-answering curve (0: the answer never depends "
    "on the reasoning). mistake: against the same cut of the reasoning without the mistake. 95% intervals; "
    "† fewer than 50 samples (exact interval)."
)


def _iv(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return fmt_interval(d.get("value"), d.get("low"), d.get("high"), d.get("n"))


def _diff(d: dict[str, Any] | None) -> str:
    if not d or d.get("difference") is None:
        return "-"
    low, high, p = d.get("low"), d.get("high"), d.get("p_value")
    span = f" [{low:+.2f}, {high:+.2f}]" if low is not None else ""
    return f"{d['difference']:+.3f}{span}" + (f" p={p:.3f}" if p is not None else "")


def cue_table(summary: dict[str, Any], title: str = "Cue verbalization") -> Table:
    cols = [
        "cue",
        "n",
        "switch",
        "control",
        "excess",
        "switched",
        "verbalized",
        "judge",
        "κ",
        "accuracy uncued",
        "accuracy cued",
    ]
    rows = []
    for cue, s in summary["cues"].items():
        agree = s.get("detector_vs_judge") or {}
        rows.append(
            {
                "cue": cue,
                "n": s["n"] - s["no_cue"],
                "switch": _iv(s["switch"]),
                "control": _iv(s["control_change"]),
                "excess": _diff(s["excess"]),
                "switched": s["switched"],
                "verbalized": _iv(s["verbalized"]),
                "judge": _iv(s.get("judge_verbalized")),
                "κ": fmt(agree.get("kappa"), 2) if agree else "-",
                "accuracy uncued": _iv(s["accuracy_uncued"]),
                "accuracy cued": _iv(s["accuracy_cued"]),
            }
        )
    return Table("cue", title, cols, rows, CUE_NOTE)


def thinking_table(summary: dict[str, Any]) -> Table | None:
    rows = [
        {
            "cue": cue,
            "switched with thinking": s["thinking"]["n"],
            "in thinking": _iv(s["thinking"]["in_thinking"]),
            "in answer": _iv(s["thinking"]["in_answer"]),
        }
        for cue, s in summary["cues"].items()
        if s.get("thinking")
    ]
    if not rows:
        return None
    cols = ["cue", "switched with thinking", "in thinking", "in answer"]
    return Table("thinking", "Verbalized in the thinking block and in the answer (keyword detector)", cols, rows)


def perturb_table(summary: dict[str, Any], title: str = "Reasoning perturbations") -> Table:
    p = summary["perturbations"]
    rows: list[dict[str, Any]] = [{"measure": "accuracy after the whole reasoning", "value": _iv(p["accuracy"])}]
    early = p.get("early_answer")
    if early:
        for f, d in early["matches"].items():
            rows.append({"measure": f"early answer at {float(f):.0%}: same as the whole reasoning's", "value": _iv(d)})
        rows.append({"measure": "AOC (area over the early-answering curve)", "value": _iv(early["aoc"])})
        rows.append({"measure": "accuracy without reasoning", "value": _iv(early["accuracy_without_reasoning"])})
    if "filler" in p:
        rows.append({"measure": "filler: answer changed", "value": _iv(p["filler"]["changed"])})
        rows.append({"measure": "filler: accuracy", "value": _iv(p["filler"]["accuracy"])})
        if "accuracy_vs_no_reasoning" in p["filler"]:
            rows.append(
                {
                    "measure": "filler minus no reasoning (accuracy)",
                    "value": _diff(p["filler"]["accuracy_vs_no_reasoning"]),
                }
            )
    if "mistake" in p:
        rows.append({"measure": "mistake: answer changed (vs the same cut)", "value": _iv(p["mistake"]["changed"])})
    if "paraphrase" in p:
        rows.append({"measure": "paraphrase: answer changed", "value": _iv(p["paraphrase"]["changed"])})
    return Table("perturb", title, ["measure", "value"], rows, PERTURB_NOTE)


def cot_markdown(summary: dict[str, Any], model: str) -> str:
    """A ``cot`` run's ``summary.md``."""
    head = f"# selfexplain cot: {summary['test']}\n\nmodel `{model}`, task `{summary['task']}`\n\n"
    if summary["test"] == "cue":
        parts = [cue_table(summary).markdown()]
        think = thinking_table(summary)
        if think:
            parts.append(think.markdown())
    else:
        parts = [perturb_table(summary).markdown()]
        truncated = summary["perturbations"]["truncated"]
        if truncated:
            parts.append(f"{truncated} reasoning(s) were cut by the token budget.\n")
    return head + "\n".join(parts)
