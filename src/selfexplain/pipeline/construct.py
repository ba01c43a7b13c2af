"""The ``construct`` command: pseudo-faithful explanations from erasure attribution, the training files of
each style, and the table 3 check of constructed against the model's own explanations.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..attribution import WordAttribution
from ..attribution import attribute as attribute_examples
from ..backends import Backend
from ..construction import CANDIDATES as CF_CANDIDATES
from ..construction import RANKED_RULE as CF_RANKED_RULE
from ..construction import STYLES as CONSTRUCT_STYLES
from ..construction import construct_explanations, training_chat
from ..errors import UserError
from ..evaluation import chunks, classify, run_evaluation, summarize
from ..layout import constructed_faithful
from ..reports import construction_markdown
from ..reports.construction import training_flips
from ..store import RunStore
from ..tasks import TaskSpec, get_task
from ..tasks.data import Example
from .attribute import influence_cfg
from .runs import Hooks, check_sizes, chunk_size_from, data_config, load_for_run, open_run, sample_examples


@dataclass
class ConstructResult:
    run_dir: Path
    stats: dict[str, Any]
    files: dict[str, Path]


def construct(
    model: str = "embedded",
    task: str | TaskSpec = "tweets",
    limit: int = 500,
    seed: int = 0,
    chunk_size: int = 16,
    output_path: str | Path = "runs",
    data: str | None = None,
    hub: bool = False,
    backend: str = "hf",
    model_args: dict[str, Any] | None = None,
    quality: int = 0,
    backend_instance: Backend | None = None,
    hooks: Hooks | None = None,
    per_style: int | None = None,
    influence: str = "normalised",
    max_new_tokens: int | None = None,
    styles: list[str] | None = None,
    wait: bool = False,
    cf_candidates: int = CF_CANDIDATES,
    only_flipping: bool = False,
    batch_size: int | None = None,
) -> ConstructResult:
    """Pseudo-faithful explanation data from the training pool, plus the table 3 quality check on ``quality`` samples.

    A counterfactual word that copies a word of the input, a label word or w* is replaced by the best of the
    reply's ``cf_candidates`` ranked first tokens (0: such samples are dropped).  Every kept example records
    whether its edit flips the model's prediction.  The training files of ``styles`` hold the same number of
    explanations, as in the paper: every file is cut to the smallest number those styles kept (the first ones,
    in sample order); ``construction.json`` says how many and why.

    Args:
        model, task, seed, chunk_size, output_path, data, hub, backend, model_args, backend_instance, hooks,
            max_new_tokens, wait, batch_size: as in :func:`evaluate`.
        limit: source samples from the training pool, at most.
        quality: samples of the table 3 check (constructed against the model's own explanations); at most
            ``limit``.
        per_style: take source samples in order until each style has kept this many (None: use all ``limit``).
        influence: which probability picks w* (see :func:`attribute`).
        styles: the styles whose files are balanced (default: all three; a study passes those it trains).
        cf_candidates: ranked first tokens tried when the greedy counterfactual word is rejected.
        only_flipping: keep only examples whose edit flips the model's prediction (the paper keeps all).

    Returns:
        The run folder, the construction's counts and the training file of each style.

    Raises:
        UserError: an evaluation-only task, a bad size, data file or model, in one line.
    """
    hooks = hooks or Hooks()
    spec = get_task(task) if isinstance(task, str) else task
    if not spec.training_allowed:
        raise UserError(f"task {spec.name} is evaluation-only (its licence forbids training data); use evaluate")
    if quality > limit:
        raise UserError("--quality cannot exceed --limit")
    if per_style is not None and per_style <= 0:
        raise UserError("--per-style must be positive")
    if cf_candidates < 0:
        raise UserError("--cf-candidates must be 0 or more")
    form = influence_cfg(influence)
    chunk_size = chunk_size_from(chunk_size, batch_size)
    check_sizes(chunk_size, output_path)
    balanced = list(CONSTRUCT_STYLES) if styles is None else [s for s in CONSTRUCT_STYLES if s in styles]
    if not balanced:
        raise UserError(f"construct: no constructed style among {styles} (use {', '.join(CONSTRUCT_STYLES)})")
    examples = sample_examples(spec, limit, seed, data, hub, "train")
    be = load_for_run(backend, model, model_args, backend_instance, hooks)
    data_cfg = data_config(data, hub, "train", seed, limit)
    # The marker keeps runs built under the paper's filter alone (copies kept, no ranked candidates) from
    # being reused.
    settings = {
        "batch_size": chunk_size,
        **form,
        **({"per_style": per_style} if per_style else {}),
        **({"balanced_styles": balanced} if len(balanced) < len(CONSTRUCT_STYLES) else {}),
        "counterfactual": {"copies": "rejected", "candidates": cf_candidates, "ranked": CF_RANKED_RULE},
        **({"only_flipping": True} if only_flipping else {}),
    }
    with open_run("construct", spec, examples, be, backend, data_cfg, output_path, settings, hooks, wait) as store:
        return _construct_in(
            store,
            be,
            spec,
            examples,
            chunk_size,
            hooks,
            per_style,
            balanced,
            quality,
            influence,
            max_new_tokens,
            model,
            cf_candidates,
            only_flipping,
        )


def _construct_in(
    store: RunStore,
    be: Backend,
    spec: TaskSpec,
    examples: list[Example],
    chunk_size: int,
    hooks: Hooks,
    per_style: int | None,
    balanced: list[str],
    quality: int,
    influence: str,
    max_new_tokens: int | None,
    model: str,
    cf_candidates: int,
    only_flipping: bool,
) -> ConstructResult:
    """construct's work, inside its run folder (which this process holds)."""

    def enough(records: list[dict[str, Any]]) -> bool:
        kept = _kept_counts(records, only_flipping)
        return all(kept[s] >= per_style for s in balanced)  # type: ignore[operator]

    def compute(c: int, part: list[Example]) -> list[dict[str, Any]]:
        atts = attribute_examples(be, spec, part, influence)
        built = construct_explanations(be, spec, atts, candidates=cf_candidates)
        cf_edits = [
            (b["counterfactual"].edited_input, a.context)
            for a, b in zip(atts, built)
            if b["counterfactual"].edited_input
        ]
        cf_preds = iter(classify(be, spec, cf_edits))
        rows = []
        for a, b in zip(atts, built):
            cf = b["counterfactual"]
            new = next(cf_preds).label if cf.edited_input else None
            if new is not None:
                cf.flips = new != a.prediction
            rows.append(
                {
                    "attribution": asdict(a),
                    "constructed": {s: asdict(x) for s, x in b.items()},
                    "cf_new_prediction": new,
                }
            )
        return rows

    records = store.process(
        chunks(examples, chunk_size), len, compute, hooks.on_chunk, enough=enough if per_style else None
    )
    stats = construction_stats(records)
    stats["only_flipping"] = only_flipping
    kept = _kept_counts(records, only_flipping)
    smallest = min(balanced, key=lambda s: kept[s])
    size = min([kept[smallest], *([per_style] if per_style else [])])
    stats["train_size"] = size
    stats["per_style"] = per_style
    stats["balanced_styles"] = balanced
    who = "every style" if len(balanced) == len(CONSTRUCT_STYLES) else " and ".join(balanced)
    usable = "kept and flipping" if only_flipping else "kept"
    stats["sizes_note"] = f"{who} trains on {size} {'flipping ' if only_flipping else ''}explanations" + (
        ""
        if all(kept[s] == size for s in balanced)
        else f" (the first {size} {usable} of each; the smallest count {usable} was {smallest}'s {kept[smallest]}"
        + (
            f", short of the {per_style} asked for within {len(examples)} samples"
            if per_style and size < per_style
            else ""
        )
        + ")"
    )
    files = _write_training_files(store, spec, records, size, only_flipping)
    for style in CONSTRUCT_STYLES:  # what each file holds, by the rule table 3 reads it with
        flags = training_flips(records, style, stats)
        stats["styles"][style]["train"] = len(flags)
        stats["styles"][style]["train_flips"] = sum(flags)
    quality = min(quality, len(records))  # --per-style may stop before --quality samples
    if quality:
        q_cfg = {
            "quality": quality,
            "of": store.config,
            **({"max_new_tokens": max_new_tokens} if max_new_tokens else {}),
        }
        with RunStore.open(store.path, "quality", q_cfg) as q_store:
            originals = run_evaluation(
                be,
                spec,
                examples[:quality],
                list(CONSTRUCT_STYLES),
                "one",
                q_store,
                chunk_size,
                max_new_tokens=max_new_tokens,
            )
        stats["quality"] = quality_table(records[:quality], originals)
    store.write_json("construction.json", stats)
    store.write_text("construction.md", construction_markdown(stats, spec.name, model))
    return ConstructResult(store.path, stats, files)


def _usable(record: dict[str, Any], style: str, only_flipping: bool) -> bool:
    """Whether a construct record's explanation of ``style`` may go into its training file."""
    flips = constructed_faithful(record, style)
    return flips is not None and (flips or not only_flipping)


def _kept_counts(records: list[dict[str, Any]], only_flipping: bool = False) -> dict[str, int]:
    return {s: sum(_usable(r, s, only_flipping) for r in records) for s in CONSTRUCT_STYLES}


def _write_training_files(
    store: RunStore, spec: TaskSpec, records: list[dict[str, Any]], size: int, only_flipping: bool
) -> dict[str, Path]:
    """One datasets-loadable JSONL file per style (its first ``size`` usable explanations): ``messages``
    in the table 2 template plus provenance, and whether the edit flips the prediction."""
    files = {}
    for style in CONSTRUCT_STYLES:  # a style outside the balanced ones may hold fewer
        lines: list[str] = []
        for r in records:
            a, c = r["attribution"], r["constructed"][style]
            if not _usable(r, style, only_flipping):
                continue
            if len(lines) == size:
                break
            att = WordAttribution(**a)
            lines.append(
                json.dumps(
                    {
                        "messages": training_chat(spec, att, style, c["explanation"]),
                        "style": style,
                        "task": spec.name,
                        "sample_id": a["sample_id"],
                        "gold": a["gold"],
                        "prediction": a["prediction"],
                        "second_label": a["second_label"],
                        "w_star": a["w_star"],
                        "influence": a["influence"][a["w_star_index"]],
                        "influence_raw": a["influence_raw"][a["w_star_index"]],
                        "label_probs": a["label_probs"],
                        "edited_input": c["edited_input"],
                        "counterfactual_word": c["counterfactual_word"],
                        "flips": constructed_faithful(r, style),
                    },
                    ensure_ascii=False,
                )
            )
        files[style] = store.write_text(f"train-{style}.jsonl", "".join(line + "\n" for line in lines))
    return files


def construction_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per style: kept, how many of them flip the prediction, drop reasons; for counterfactuals, how many
    greedy words were replaced by a ranked candidate, by the greedy word's rejection."""
    out: dict[str, Any] = {"n_samples": len(records), "styles": {}}
    for style in CONSTRUCT_STYLES:
        reasons: dict[str, int] = {}
        replaced: dict[str, int] = {}
        kept = flips = 0
        for r in records:
            c = r["constructed"][style]
            why = c["drop_reason"]
            if why is None:
                kept += 1
                flips += bool(constructed_faithful(r, style))
                if c.get("candidate_rank"):
                    replaced[c["greedy_rejected"]] = replaced.get(c["greedy_rejected"], 0) + 1
            else:
                reasons[why] = reasons.get(why, 0) + 1
        out["styles"][style] = {
            "kept": kept,
            "flips": flips,
            "dropped": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
            **(
                {"replaced": dict(sorted(replaced.items(), key=lambda kv: -kv[1]))} if style == "counterfactual" else {}
            ),
        }
    return out


def quality_table(records: list[dict[str, Any]], originals: list[dict[str, Any]]) -> dict[str, Any]:
    """Table 3: faithfulness of constructed vs originally generated explanations on the same samples."""
    orig = summarize(originals)
    table = {}
    for style in CONSTRUCT_STYLES:
        flags = [f for f in (constructed_faithful(r, style) for r in records) if f is not None]
        o = next(s for s in orig.styles if s.style == style)
        table[style] = {
            "original": o.faithfulness,
            "original_valid": o.n_valid,
            "constructed": sum(flags) / len(flags) if flags else None,
            "constructed_n": len(flags),
        }
    return table
