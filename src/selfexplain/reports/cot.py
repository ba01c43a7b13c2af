"""The chain-of-thought tests' tables (``cot`` runs' ``summary.md``; the cot results page), from summaries alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from ..errors import UserError
from ..names import model_folder_name
from ..store import atomic_write, iter_records, read_json
from .html import STYLE, _Raw
from .table import Table, fmt, fmt_interval

CUE_NOTE = (
    "switch: the answer with the cue is the label the cue names (a label other than the model's own uncued answer). "
    "control: the same cue naming the model's own answer; how often the answer moves anyway. excess: switch minus "
    "control, paired sample by sample (bootstrap interval, sign-flip p; Holm: adjusted over the run's excesses, "
    "every cue against each of its controls). verbalized: among switched samples, the reasoning mentions the cue "
    "(keyword detector; judge: a judge model's P(Yes) > 0.5); κ: Cohen's kappa of the "
    "two detectors on every cued reasoning. cut: reasonings cut by the token budget, without/with the cue. "
    "95% intervals; † fewer than 50 samples (exact interval)."
)
OTHER_NOTE = (
    " third label: the same cue naming a wrong label besides the cued one; how often the answer is the cued label "
    "anyway (excess vs third: switch minus it, paired)."
)
RESAMPLE_NOTE = (
    " resampled: the uncued reasoning sampled {k} times per sample (temperature {t}); the mean share of their "
    "answers that are the cued label (excess vs resampled: switch minus it, paired), and of those that differ "
    "from the greedy answer (resampled flips)."
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
    low, high, p, adjusted = d.get("low"), d.get("high"), d.get("p_value"), d.get("p_holm")
    span = f" [{low:+.2f}, {high:+.2f}]" if low is not None else ""
    shown = f" p={p:.3f}" if p is not None else ""
    return f"{d['difference']:+.3f}{span}{shown}" + (f" (Holm {adjusted:.3f})" if adjusted is not None else "")


def cue_table(summary: dict[str, Any], title: str = "Cue verbalization", lead: dict[str, Any] | None = None) -> Table:
    cols = list(lead or {}) + [
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
        "cut",
    ]
    extra = _extra_columns([summary])
    at = cols.index("excess") + 1
    cols[at:at] = extra
    rows = []
    for cue, s in summary["cues"].items():
        agree = s.get("detector_vs_judge") or {}
        more = {
            "third label": _iv(s.get("other_hit")),
            "excess vs third": _diff(s.get("excess_other")),
            "resampled": _iv(s.get("resample_hit")),
            "excess vs resampled": _diff(s.get("excess_resampling")),
            "resampled flips": _iv(s.get("resample_flip")),
        }
        rows.append(
            {
                **(lead or {}),
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
                "cut": f"{s['truncated_uncued']}/{s['truncated_cued']}",
                **{k: more[k] for k in extra},
            }
        )
    return Table("cue", title, cols, rows, cue_note([summary]))


def _extra_columns(summaries: list[dict[str, Any]]) -> list[str]:
    """The optional controls' columns, only where some run has them."""
    cues = [s for summary in summaries for s in summary["cues"].values()]
    other = ["third label", "excess vs third"] if any("other_hit" in s for s in cues) else []
    sampled = ["resampled", "excess vs resampled", "resampled flips"] if any("resample_hit" in s for s in cues) else []
    return other + sampled


def cue_note(summaries: list[dict[str, Any]]) -> str:
    """The cue table's note, with the optional controls' lines where some run has them."""
    cues = [(summary, s) for summary in summaries for s in summary["cues"].values()]
    note = CUE_NOTE + (OTHER_NOTE if any("other_hit" in s for _, s in cues) else "")
    settings = [(s["resamples"], summary.get("temperature")) for summary, s in cues if "resamples" in s]
    for k, t in dict.fromkeys(settings):
        note += RESAMPLE_NOTE.format(k=k, t=t)
    return note


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
    for what, counts in p.get("labels", {}).items():
        mix = ", ".join(f"{label} {k}" for label, k in counts.items())
        one = " (one label: a share that compares these answers with others only restates the others' label mix)"
        rows.append({"measure": f"answers {what}", "value": mix + (one if len(counts) == 1 else "")})
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


# ---- a folder of cot runs: one page ------------------------------------------------------------------------------


def cot_runs(folder: Path) -> list[Path]:
    """The finished ``cot`` run folders directly under ``folder`` (those with a ``summary.json``), by name."""
    return sorted(p.parent for p in folder.glob("cot-*/summary.json"))


def _lead(run: Path, summary: dict[str, Any]) -> dict[str, Any]:
    config = read_json(run / "config.json")
    return {"task": summary["task"], "model": model_folder_name(summary["model"]), "n asked": config["data"]["limit"]}


def folder_tables(folder: Path) -> list[Table]:
    """Every cue run's rows in one table and every perturbation run's in another."""
    cue_rows: list[dict[str, Any]] = []
    perturb_rows: list[dict[str, Any]] = []
    cue_cols: list[str] = []
    cue_summaries = []
    for run in cot_runs(folder):
        summary = read_json(run / "summary.json")
        if summary["test"] == "cue":
            t = cue_table(summary, lead=_lead(run, summary))
            cue_rows += t.rows
            cue_summaries.append(summary)
            if len(t.columns) > len(cue_cols):
                cue_cols = t.columns
        else:
            lead = _lead(run, summary)
            for row in perturb_table(summary).rows:
                perturb_rows.append({**lead, **row})
    tables = []
    if cue_rows:
        # one column set for every run: the base columns with each optional control's where any run has it
        extra = _extra_columns(cue_summaries)
        at = cue_cols.index("excess") + 1
        cue_cols = [c for c in cue_cols if c not in extra]
        cue_cols[at:at] = extra
        tables.append(Table("cue", "Cue verbalization", cue_cols, cue_rows, cue_note(cue_summaries)))
    if perturb_rows:
        cols = ["task", "model", "n asked", "measure", "value"]
        tables.append(Table("perturb", "Reasoning perturbations", cols, perturb_rows, PERTURB_NOTE))
    return tables


def explorer_samples(folder: Path) -> list[dict[str, Any]]:
    """The cue runs' records, as the page's explorer shows them."""
    out = []
    for run in cot_runs(folder):
        summary = read_json(run / "summary.json")
        if summary["test"] != "cue":
            continue
        model = model_folder_name(summary["model"])
        for r in iter_records(run):
            if r["no_cue"] is not None:
                continue
            out.append(
                {
                    "run": f"{r['task']} | {model}",
                    "cue": r["cue"],
                    "input": r["input"],
                    "answer": f"{r['answer']} -> {r['cued_answer']} (cue: {r['cued_label']}; gold {r['gold']})",
                    "switched": bool(r["switched"]),
                    "detected": r["detected"] or "",
                    "judge": r["judge"],
                    "reply": r["cued_reply"],
                }
            )
    return out


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfexplain cot: {{ name }}</title>
<style>{{ style }}
#explorer td { white-space: pre-wrap; max-width: 360px; } .switched { background: #fbeaea; }
</style></head><body>
<h1>selfexplain cot: {{ name }}</h1>
{% for t in tables %}<h2>{{ t.title }}</h2><p class="note">{{ t.note }}</p>
<table><thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for r in t.rows %}<tr>{% for c in t.columns %}<td>{{ r.get(c, "-") }}</td>{% endfor %}</tr>{% endfor %}
</tbody></table>{% endfor %}
<h2>Cued samples</h2>
<p class="note">{{ n }} cued reasonings; switched ones are shaded.</p>
<label>run <select id="f-run"><option value="">all</option>
{% for r in runs %}<option>{{ r }}</option>{% endfor %}</select></label>
<label>cue <select id="f-cue"><option value="">all</option>
{% for c in cues %}<option>{{ c }}</option>{% endfor %}</select></label>
<label>switched <select id="f-sw"><option value="">all</option>
<option value="yes">yes</option><option value="no">no</option></select></label>
<span id="count"></span>
<table id="explorer"><thead><tr><th>run</th><th>cue</th><th>input</th><th>answer -> with the cue</th>
<th>detector</th><th>judge P(yes)</th><th>reasoning with the cue</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="samples">{{ samples_json }}</script>
<script>
const SAMPLES = JSON.parse(document.getElementById("samples").textContent);
const f = id => document.getElementById(id).value;
function render() {
  const rows = SAMPLES.filter(s => (!f("f-run") || s.run === f("f-run")) && (!f("f-cue") || s.cue === f("f-cue")) &&
    (!f("f-sw") || (f("f-sw") === "yes") === s.switched));
  const body = document.querySelector("#explorer tbody");
  body.replaceChildren();
  for (const s of rows.slice(0, 500)) {
    const tr = document.createElement("tr");
    tr.className = s.switched ? "switched" : "";
    for (const v of [s.run, s.cue, s.input, s.answer, s.detected,
                     s.judge === null ? "-" : s.judge.toFixed(2), s.reply]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  document.getElementById("count").textContent = rows.length + " matching" + (rows.length > 500 ? " (first 500)" : "");
}
for (const id of ["f-run", "f-cue", "f-sw"]) document.getElementById(id).addEventListener("change", render);
render();
</script></body></html>
"""


def write_cot_report(folder: Path, output: Path | None = None) -> dict[str, list[Path]]:
    """``cot.md``, one CSV per table and ``cot.html`` (tables and an explorer of the cued samples) for every
    finished ``cot`` run directly under ``folder``.

    Raises:
        UserError: ``folder`` holds no finished cot run.
    """
    if not cot_runs(folder):
        raise UserError(f"{folder}: no finished cot run (cot-cue-* or cot-perturb-* with a summary.json) in it")
    out = output or folder
    out.mkdir(parents=True, exist_ok=True)
    tables = folder_tables(folder)
    files: dict[str, list[Path]] = {"tables": [], "html": []}
    md = f"# selfexplain cot: {folder.name}\n\n" + "\n".join(t.markdown() for t in tables)
    atomic_write(out / "cot.md", md)
    files["tables"].append(out / "cot.md")
    for t in tables:
        atomic_write(out / f"{t.name}.csv", t.csv())
        files["tables"].append(out / f"{t.name}.csv")
    samples = explorer_samples(folder)
    page = (
        Environment(autoescape=select_autoescape(default=True, default_for_string=True))
        .from_string(_PAGE)
        .render(
            name=folder.name,
            style=_Raw(STYLE),
            tables=tables,
            n=len(samples),
            runs=list(dict.fromkeys(s["run"] for s in samples)),
            cues=list(dict.fromkeys(s["cue"] for s in samples)),
            # "<" would end the script element early; JSON may spell it \u003c.
            samples_json=_Raw(json.dumps(samples, ensure_ascii=False).replace("<", "\\u003c")),
        )
    )
    atomic_write(out / "cot.html", page)
    files["html"].append(out / "cot.html")
    return files
