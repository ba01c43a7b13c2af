"""Re-judging finished ``evaluate`` runs under today's rules, from their records.

What changed since a run was made, and what re-judging does about it:

* **Random baselines** (``random_baseline: true`` in the run's configuration): the random words were drawn
  from all the input's words, so a baseline could repeat the explanation's own edit.  Today they are drawn
  from the other words only.  A uniform draw from all words, conditioned on missing the explanation's words,
  is a uniform draw from the other words: so a baseline that misses them is already a draw under today's
  rule and is kept as it is, and only one that hits them (or a word already ``[REDACTED]``) is drawn again,
  with the generator a fresh run would use for that record, and classified in a fresh chat by the run's own
  model (adapter included: its weights must be at hand and are checked against the run's identity).  Where
  the input has too few other words the record gets ``no_random`` instead.  An erasure cell's baseline
  agreement (``random_erasure_rank``) is recomputed from the input's erasure attribution.
* **Unchanged baselines**: a counterfactual's new words were taken by an alignment that is not minimal on
  repeated words, so a baseline could put a copied word back in its own place and leave the input unchanged
  (6 of the 815 valid counterfactuals of the committed runs).  Such a baseline is drawn again, in runs of
  either rule.
* **Strict redaction validity and word classes** (``valid_strict``, ``target_class``): recorded where
  missing, from the record alone.

Every other field is kept.  ``config.json`` then holds today's rule, so the folder is renamed to the one a
fresh run of the same command would use (a later ``reproduce`` finds it); its ``runtime`` (outside the
run id) says what was re-judged.  A study's references to renamed folders are rewritten.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import styles as S
from . import words as W
from .attribution import attribute
from .backends import Backend, load_backend
from .errors import UserError
from .evaluation import NO_OTHER_WORDS, RANDOM_BASELINE, check_explanation, classify, random_rng, summarize
from .layout import NONE, model_key, read_study, study_for_disk
from .measures import erasure_rank
from .reports import summary_markdown
from .store import RUNTIME, RunStore, atomic_write, config_hash, iter_records
from .tasks import get_task
from .tasks.data import Example
from .wordclasses import explanation_class

EVALUATE = "evaluate"


@dataclass(frozen=True)
class Rejudged:
    """What re-judging one run did."""

    old_dir: Path
    run_dir: Path  # where the run is now
    n_records: int
    redrawn: int  # baselines that hit the explanation's words, drawn again and classified
    no_random: int  # of those, inputs with too few other words: no baseline now
    current: bool  # the run already followed today's rules: nothing was changed


def needs_rejudging(config: dict[str, Any]) -> bool:
    return config.get("command") == EVALUATE and config.get("random_baseline") is True


def hits_explanation(record: dict[str, Any]) -> bool:
    """Whether a record's random baseline edits a word the explanation names or edits, or a ``[REDACTED]``."""
    text = record["input"]
    keys = W.word_keys(text)
    named = {keys[p] for p in W.changed_positions(text, record["edited_input"] or "")} | {W.REDACTED.casefold()}
    return any(keys[p] in named for p in W.changed_positions(text, record["random_input"]))


def unchanged_baseline(record: dict[str, Any]) -> bool:
    """Whether a record's random baseline left its input as it was (no baseline at all)."""
    return record["random_input"] is not None and not W.changed_positions(record["input"], record["random_input"])


def rejudge_run(run_dir: str | Path, load: Callable[[dict[str, Any]], Backend]) -> Rejudged:
    """Re-judge one evaluate run in place and move it to its current folder name.  ``load(config)`` gives the
    backend the run's configuration names (its ``backend`` and model identity); it is called only when a
    baseline has to be classified again."""
    run_dir = Path(run_dir)
    cfg_file = run_dir / RunStore.CONFIG
    if not cfg_file.exists():
        raise UserError(f"{run_dir}: no config.json (not a run folder)")
    config = json.loads(cfg_file.read_text())
    if config.get("command") != EVALUATE:
        raise UserError(f"{run_dir}: not an evaluate run (command {config.get('command')!r})")
    records = list(iter_records(run_dir))
    if not needs_rejudging(config) and not any(unchanged_baseline(r) for r in records if r.get("valid")):
        return Rejudged(run_dir, run_dir, len(records), 0, 0, True)
    if not (run_dir / "summary.json").exists():
        raise UserError(f"{run_dir}: the run is not finished; finish it (run the same command) before re-judging")
    task = get_task(config["task"]["name"])
    if task.fingerprint() != config["task"]["fingerprint"]:
        raise UserError(
            f"{run_dir}: task {task.name}'s definition changed since the run (fingerprint); "
            "re-judging would mix two definitions"
        )
    seed = config["data"]["seed"]
    redraw: list[tuple[dict[str, Any], S.Checked]] = []
    for r in records:
        _, checked = check_explanation(task, r["style"], r["raw_explanation"], r["input"], r["width"])
        if checked.valid != r["valid"] or checked.edited_input != r["edited_input"]:
            raise UserError(
                f"{run_dir}: sample {r['sample_id']} ({r['style']}): today's {r['style']} check judges "
                "its explanation differently; re-judging keeps validity and cannot go on"
            )
        r.setdefault("valid_strict", checked.strict)
        r.setdefault("target_class", explanation_class(r["input"], r["edited_input"]) if r["valid"] else None)
        r.setdefault("no_random", None)
        if r["random_input"] is not None and (hits_explanation(r) or unchanged_baseline(r)):
            redraw.append((r, checked))
    edits: list[tuple[dict[str, Any], str]] = []
    for r, checked in redraw:
        rng = random_rng(seed, task.name, r["sample_id"], r["style"], r["width"])
        edit = S.get_style(r["style"]).random_edit(r["input"], checked, rng)
        if edit is None:
            r.update(
                random_input=None,
                random_prediction=None,
                random_faithful=None,
                random_label_probs=None,
                no_random=NO_OTHER_WORDS,
            )
            if "random_erasure_rank" in r:
                r.update(random_erasure_rank=None, random_names_w_star=None)
        else:
            edits.append((r, edit))
    if edits:
        backend = load(config)
        preds = classify(backend, task, [(edit, r["context"]) for r, edit in edits])
        erased = {}
        if config.get("erasure"):
            inputs = {r["sample_id"]: Example(r["sample_id"], r["input"], r["gold"], r["context"]) for r, _ in edits}
            erased = {a.sample_id: a for a in attribute(backend, task, list(inputs.values()))}
        for (r, edit), p in zip(edits, preds):
            r.update(
                random_input=edit,
                random_prediction=p.label,
                random_faithful=p.label != r["prediction"],
                random_label_probs=p.probs,
            )
            if config.get("erasure"):
                a = erased[r["sample_id"]]
                r["random_erasure_rank"], r["random_names_w_star"] = erasure_rank(
                    r["input"], edit, a.words, a.influence, a.w_star
                )
    return _write(run_dir, config, records, len(redraw), len(redraw) - len(edits))


def _write(
    run_dir: Path, config: dict[str, Any], records: list[dict[str, Any]], redrawn: int, no_random: int
) -> Rejudged:
    """The re-judged records, summary and configuration, in the folder a fresh run would use."""
    new_config = {k: v for k, v in config.items() if k != RUNTIME}
    new_config["random_baseline"] = RANDOM_BASELINE
    target = run_dir.parent / f"{run_dir.name.rsplit('-', 1)[0]}-{config_hash(new_config)[:12]}"
    if target.exists() and target != run_dir:
        raise UserError(f"{run_dir}: re-judged, it would become {target.name}, which exists already; remove one")
    runtime = dict(config.get(RUNTIME, {}))
    if needs_rejudging(config):
        runtime["rejudged"] = {
            "random_baseline": f"{RANDOM_BASELINE} (was: from all words)",
            "redrawn": redrawn,
            "no_random": no_random,
            "kept": sum(r["random_input"] is not None for r in records) - (redrawn - no_random),
        }
    else:  # a run of today's rule (perhaps re-judged before): only unchanged baselines were drawn again
        runtime["unchanged_baselines_redrawn"] = {"redrawn": redrawn, "no_random": no_random}
    atomic_write(
        run_dir / RunStore.RECORDS,
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
        kept="the run as it was",
    )
    summary = summarize(records)
    atomic_write(
        run_dir / "summary.json",
        json.dumps(summary.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        kept="the old summary",
    )
    old_md = (run_dir / "summary.md").read_text() if (run_dir / "summary.md").exists() else ""
    header = old_md.split("\n**", 1)[0].rstrip("\n") + "\n" if "\n**" in old_md else ""
    atomic_write(run_dir / "summary.md", summary_markdown(summary, header), kept="the old summary")
    atomic_write(
        run_dir / RunStore.CONFIG,
        json.dumps({**new_config, RUNTIME: runtime}, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        kept="the old configuration",
    )
    if target != run_dir:
        shutil.move(str(run_dir), str(target))
    return Rejudged(run_dir, target, len(records), redrawn, no_random, False)


class MissingModel(UserError):
    """The run's model (its adapter) is not at hand, and a baseline has to be classified again."""


def rejudge_study(
    root: str | Path, load: Callable[[dict[str, Any], str | None], Backend]
) -> list[tuple[str, Rejudged | UserError]]:
    """Re-judge every evaluation cell of a study and point the study at the renamed folders.  ``load(config,
    adapter)`` gives the backend of a cell's run; ``adapter`` is the trained condition's adapter folder as the
    study recorded it (None for the untrained model).  A cell whose adapter is gone, where it is needed, is
    left as it was and returned with the reason."""
    root = Path(root)
    study = read_study(root)
    out: list[tuple[str, Rejudged | UserError]] = []
    for cell in study["cells"]:
        model = model_key(cell["condition"], cell["train_task"], cell.get("seed"))  # a further seed: its own model
        key = f"{model} on {cell['eval_task']} ({cell['width']})"
        adapter = None
        if cell["condition"] != NONE:
            stage = study["stages"].get(f"train|{model}", {})
            adapter = stage.get("adapter")
        try:
            done = rejudge_run(cell["run_dir"], lambda config: load(config, adapter))
        except UserError as e:  # the adapter is gone, or the run cannot be re-judged: the other cells still can
            out.append((key, e))
            continue
        out.append((key, done))
        if done.run_dir != done.old_dir:
            cell["run_dir"] = str(done.run_dir)
            for stage in study["stages"].values():
                if stage.get("run_dir") and Path(stage["run_dir"]) == done.old_dir:
                    stage["run_dir"] = str(done.run_dir)
            atomic_write(
                root / "study.json", json.dumps(study_for_disk(root, study), indent=2) + "\n", kept="the old study.json"
            )
    return out


def rejudge(
    paths: list[str | Path], model: str | None = None, model_args: dict[str, Any] | None = None
) -> list[tuple[Path, str, Any]]:
    """Re-judge evaluate runs or whole studies under today's rules (:mod:`selfexplain.rejudge`).

    A run's model is loaded (once) only where a baseline must be classified again, with the backend the run
    used.

    Args:
        paths: evaluate run folders or study folders.
        model: the model to classify with (default: the embedded model the run's identity names).
        model_args: its model arguments (``adapter=PATH``; default, in a study: the condition's adapter).

    Returns:
        One (path, cell key or "", :class:`~selfexplain.rejudge.Rejudged` or the reason it was left) per run.

    Raises:
        UserError: a path that is neither a run nor a study, in one line.
    """
    loaded: dict[str, Backend] = {}

    def load(config: dict[str, Any], adapter: str | None = None) -> Backend:
        identity, backend = config["model"], config.get("backend", "hf")
        args = dict(model_args or {})
        if adapter and "adapter" not in args:
            if not Path(adapter).is_dir():
                raise MissingModel(
                    f"adapter {adapter} is gone (never committed): retrain it (reproduce), then re-judge"
                )
            args["adapter"] = adapter
        if identity.get("adapter") and "adapter" not in args:
            raise MissingModel("its model has a LoRA adapter: give --adapter PATH (checked against the run)")
        spec = model or _identity_model(identity)
        key = json.dumps([backend, spec, args], sort_keys=True)
        if key not in loaded:
            loaded[key] = load_backend(backend, spec, **args)
        be = loaded[key]
        if be.identity != identity:
            raise UserError(
                f"the run was made by {identity}, and {spec} {args or ''} is {be.identity} "
                f"({backend} backend): give the --model (and --adapter) it was made by"
            )
        return be

    out: list[tuple[Path, str, Any]] = []
    for p in map(Path, paths):
        if (p / "study.json").exists():
            out += [(p, key, res) for key, res in rejudge_study(p, load)]
        else:
            try:
                out.append((p, "", rejudge_run(p, load)))
            except UserError as e:  # the next run may well be fine
                out.append((p, "", e))
    return out


def _identity_model(identity: dict[str, Any]) -> str:
    """The model argument that loads a recorded identity, where it names one without ambiguity."""
    if identity.get("kind") == "embedded" and identity.get("name"):
        return f"embedded:{identity['name']}"
    raise UserError(f"the run's model is {identity}: give --model (and --adapter) to re-judge it")
