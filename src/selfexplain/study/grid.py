"""``reproduce``: the paper's grid (construct -> train -> evaluate) walked stage by stage, each stage a
resumable, configuration-hashed run of :mod:`selfexplain.api`, so a rerun computes only what is missing.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from .. import styles as S
from ..errors import NothingToTrain, UserError
from ..layout import NONE, PREDICTIONS, Cell, model_key
from ..locks import folder_lock
from ..store import check_output_path, remove_stale_temporaries
from .config import Experiment, VariantCfg
from .folder import Study, cells_need_no_adapter, release_memory


def reproduce(
    experiment: Experiment,
    output_path: str | Path,
    log: Callable[[str], None] = print,
    runs_path: str | Path | None = None,
    wait: bool = False,
    only: list[str] | None = None,
) -> Path:
    """Run (or continue) an experiment's whole grid: construct, train every condition, evaluate every cell.

    Every run is cached by its configuration, so a rerun computes only what is missing or changed.  The study
    folder is held by this process; another process on it fails at once, or with ``wait`` waits.

    Args:
        experiment: the experiment (:func:`load_experiment`).
        output_path: folder that receives the study folder (named after the experiment).
        log: receives one line per stage.
        runs_path: a run folder shared by several studies (default ``STUDY/runs``); a stage another study is
            computing there is waited for, then reused.
        wait: wait for another process that holds the study instead of failing.
        only: the conditions to compute this time (their construction included); every other condition's
            cells and stages stay as ``study.json`` records them.

    Returns:
        The study folder.

    Raises:
        UserError: a bad experiment or a failed stage's input, in one line; every completed stage is kept.
    """
    check_output_path(output_path)
    unknown = [c for c in only or [] if c not in experiment.conditions]
    if unknown:
        raise UserError(
            f"experiment {experiment.name}: --conditions: {', '.join(unknown)} not among its conditions "
            f"({', '.join(experiment.conditions)})"
        )
    root = Path(output_path) / experiment.name
    with folder_lock(root, "this study", wait=wait, on_wait=log):
        remove_stale_temporaries(root)
        return _reproduce(
            experiment, root, log, Path(runs_path) if runs_path else None, wait or runs_path is not None, only
        )


def _reproduce(
    exp: Experiment,
    root: Path,
    log: Callable[[str], None],
    runs_path: Path | None,
    wait: bool,
    only: list[str] | None = None,
) -> Path:
    """reproduce's grid, inside its study folder (which this process holds)."""
    from .. import api
    from ..backends import load_backend
    from ..tasks import get_task

    study = Study(root, exp, runs_path)
    for t in exp.train_tasks:
        if not get_task(t).training_allowed:
            raise UserError(f"experiment {exp.name}: train_tasks: {t} is evaluation-only")
    for e in exp.evaluate:
        get_task(e.task)

    settings = {c: train_settings(exp, c) for c in exp.conditions if c != NONE}  # every error before any compute
    trained = [c for c in exp.conditions if c != NONE]
    if trained and not exp.train_tasks:
        raise UserError(f"experiment {exp.name}: conditions {trained} need train_tasks")
    if only is not None:
        trained = [c for c in trained if c in only]

    started = time.time()
    log(f"loading {exp.model} ({exp.backend})")
    base: Any = load_backend(exp.backend, exp.model, **exp.model_args)  # None once training begins
    log(f"model ready in {time.time() - started:.0f}s")

    def evaluate_model(
        condition: str, train_task: str | None, backend: Any, adapter: str | None, seed: int | None = None
    ) -> None:
        args = {**exp.model_args, **({"adapter": adapter} if adapter else {})}
        source = exp.variants[condition].source_model if condition in exp.variants else None
        # A model trained on another model's explanations is also judged against that model (coupling).
        reference = load_backend("hf", source) if source else None
        for e in exp.evaluate:
            for width in e.widths:
                key = f"evaluate|{model_key(condition, train_task, seed)}|{e.task}|{width}"
                log(f"{key}: {e.limit} samples")
                info = study.stage(
                    key,
                    lambda: {
                        "run_dir": str(
                            api.evaluate(
                                model=exp.model,
                                task=e.task,
                                styles=exp.styles,
                                width=width,
                                limit=e.limit,
                                seed=exp.seed,
                                split=e.split,
                                chunk_size=exp.chunk_size,
                                output_path=study.runs,
                                data=e.data,
                                hub=e.hub,
                                backend=exp.backend,
                                model_args=args,
                                backend_instance=backend,
                                max_new_tokens=exp.max_new_tokens,
                                erasure=exp.eval_erasure(e),
                                wait=wait,
                                reference_instance=reference,
                            ).run_dir
                        )
                    },
                )
                study.add_cell(Cell(condition, train_task, e.task, width, info["run_dir"], info["seconds"], seed))

    if NONE in exp.conditions and (only is None or NONE in only):
        evaluate_model(NONE, None, base, None)

    built: dict[tuple[str, str | None], dict[str, Any]] = {}  # (task, source model or None for the study's own)
    sources = list(dict.fromkeys(v.source_model for c, v in exp.variants.items() if c in trained and v.source_model))
    if trained:
        for task in exp.train_tasks:
            log(f"construct|{task}: {exp.construction.limit} samples")
            built[task, None] = study.stage(
                f"construct|{task}", lambda: _construct(api, exp, task, base, study.runs, wait)
            )
            for source in sources:
                log(f"construct|{task}|{source}: {exp.construction.limit} samples")
                built[task, source] = study.stage(
                    f"construct|{task}|{source}",
                    lambda: _construct(api, exp, task, None, study.runs, wait, model=source),
                )
    # Training loads its own copy of the weights: free the inference copy first (a 7B model twice may not fit a GPU).
    base = None  # rebound, not deleted: the stage lambdas above close over the name
    release_memory()

    def evaluate_adapter(condition: str, task: str, adapter: str, engine: Any = None, seed: int | None = None) -> Any:
        """Evaluate one trained model; returns the engine to reuse for the next adapter (vLLM), else None."""
        if engine is not None and hasattr(engine, "with_adapter"):
            backend = engine.with_adapter(adapter)
        else:
            started = time.time()
            backend = load_backend(exp.backend, exp.model, **{**exp.model_args, "adapter": adapter})
            log(f"model with adapter ready in {time.time() - started:.0f}s")
            engine = backend if hasattr(backend, "with_adapter") else None
        evaluate_model(condition, task, backend, adapter, seed)
        del backend
        release_memory()
        return engine

    # A backend that loads the model once per adapter (hf) evaluates each trained model as soon as it is
    # trained, so a study cut short has whole conditions (the paper's first) rather than only adapters.  One that
    # serves every adapter from one engine (vLLM) evaluates after all training: its engine holds the GPU memory
    # that training would need.
    interleave = exp.backend != "vllm"
    adapters = []
    for task in exp.train_tasks if trained else []:
        for condition in trained:
            key = f"train|{model_key(condition, task)}"
            log(key)
            variant = exp.variants.get(condition)
            method = variant.method if variant is not None else "sft"
            if method != "sft":
                rl_args = _train_rl_args(exp, task, exp.variants[condition], settings[condition], study.runs)
                folder = lambda: api.train_rl_folder(method, **rl_args)  # noqa: E731
            else:
                style = exp.trains_on(condition)
                data = built[task, variant.source_model if variant else None]["files"][
                    "attribution" if style == PREDICTIONS else style
                ]
                sft_args = _train_args(exp, data, style, settings[condition], study.runs)
                folder = lambda: api.train_folder(**sft_args)  # noqa: E731
            if cells_need_no_adapter(study, condition, task, folder):
                # A fresh clone of a committed study has no adapter weights (never committed): retraining one only
                # to find its cells complete would cost its whole training time.
                log(
                    f"{key}: every evaluation cell of this model is complete; its adapter is not needed "
                    "and not retrained"
                )
                continue
            if method != "sft":
                try:
                    result = study.train(
                        key, model_key(condition, task), lambda: _train_rl(api, method, rl_args, exp.chunk_size, wait)
                    )
                except NothingToTrain as e:
                    # The rest of the grid still runs; the stage table and the cells table say what is missing.
                    log(f"{key}: skipped: {e}")
                    study.skip(key, str(e))
                    continue
            else:
                result = study.train(key, model_key(condition, task), lambda: _train(api, sft_args, wait))
            if interleave:
                evaluate_adapter(condition, task, result["adapter"])
            else:
                adapters.append((condition, task, result["adapter"]))
    engine = None  # a backend that can switch adapters (vLLM) is started once for all of them
    for condition, task, adapter in adapters:
        engine = evaluate_adapter(condition, task, adapter, engine)
    # Further training seeds, after every condition's own model: a study cut short has whole conditions first.
    # As above, an engine serving every adapter (vLLM) evaluates only after all training, and the one used for the
    # conditions' own adapters is closed first: training needs the memory it holds.
    if engine is not None and hasattr(engine, "close") and any(exp.train.seeds_of(c) for c in trained):
        engine.close()
        engine = None
    seeded_adapters = []
    for task in exp.train_tasks if trained else []:
        for condition in trained:
            for seed in exp.train.seeds_of(condition):
                key = f"train|{model_key(condition, task, seed)}"
                log(key)
                seeded = dataclasses.replace(settings[condition], seed=seed)
                variant = exp.variants.get(condition)
                method = variant.method if variant is not None else "sft"
                rl = method != "sft"
                if rl:
                    args = _train_rl_args(exp, task, exp.variants[condition], seeded, study.runs)
                    folder = lambda: api.train_rl_folder(method, **args)  # noqa: E731
                else:
                    style = exp.trains_on(condition)
                    data = built[task, variant.source_model if variant else None]["files"][
                        "attribution" if style == PREDICTIONS else style
                    ]
                    args = _train_args(exp, data, style, seeded, study.runs)
                    folder = lambda: api.train_folder(**args)  # noqa: E731
                if cells_need_no_adapter(study, condition, task, folder, seed):
                    log(
                        f"{key}: every evaluation cell of this model is complete; its adapter is not needed "
                        "and not retrained"
                    )
                    continue
                if rl:
                    result = study.train(
                        key,
                        model_key(condition, task, seed),
                        lambda: _train_rl(api, method, args, exp.chunk_size, wait),
                    )
                else:
                    result = study.train(key, model_key(condition, task, seed), lambda: _train(api, args, wait))
                if interleave:
                    evaluate_adapter(condition, task, result["adapter"], seed=seed)
                else:
                    seeded_adapters.append((condition, task, result["adapter"], seed))
    for condition, task, adapter, seed in seeded_adapters:
        engine = evaluate_adapter(condition, task, adapter, engine, seed)
    log(f"study complete: {root}")
    return root


def _construct(
    api: Any, exp: Experiment, task: str, backend: Any, runs: Path, wait: bool, model: str | None = None
) -> dict[str, Any]:
    """The construction run of ``task``: by the study's model, or (``model``) by the source of coupled variants."""
    c = exp.construction
    if model is None:
        sources = [exp.trains_on(s) for s in exp.conditions if s not in exp.variants or exp.variants[s].constructs]
    else:
        sources = [v.data for n, v in exp.variants.items() if n in exp.conditions and v.source_model == model]
    trained = [s for s in dict.fromkeys(sources) if s in S.style_names()]
    if PREDICTIONS in sources and "attribution" not in trained:
        trained.append("attribution")  # the predictions baseline trains on the attribution file's samples
    res = api.construct(
        model=model or exp.model,
        task=task,
        limit=c.limit,
        seed=exp.seed,
        chunk_size=exp.chunk_size,
        output_path=runs,
        data=c.data_for(task),
        hub=c.hub,
        backend="hf" if model else exp.backend,
        model_args={} if model else exp.model_args,
        quality=c.quality,
        backend_instance=backend,
        per_style=c.per_style,
        influence=c.influence,
        max_new_tokens=exp.max_new_tokens,
        styles=trained,
        wait=wait,
        cf_candidates=c.cf_candidates,
        only_flipping=c.only_flipping,
    )
    if res.stats["train_size"] == 0:
        raise UserError(
            f"construct|{task}: {res.stats['sizes_note']}: nothing to train on (see {res.run_dir / 'construction.md'})"
        )
    return {
        "run_dir": str(res.run_dir),
        "files": {k: str(v) for k, v in res.files.items()},
        "kept": {k: v["kept"] for k, v in res.stats["styles"].items()},
        "train_size": res.stats["train_size"],
    }


def _train_rl_args(exp: Experiment, task: str, variant: VariantCfg, settings: Any, runs: Path) -> dict[str, Any]:
    """The arguments of ``api.train_rl`` (but the method) for one RL variant."""
    from ..rewards import RewardSettings
    from ..rl import RLSettings

    raw = dict(variant.rl)
    try:
        rl = RLSettings(**{**raw, "style": variant.data, "reward": RewardSettings(**raw.pop("reward", {}))})
    except (TypeError, ValueError) as e:
        raise UserError(f"experiment {exp.name}: variants: rl: {e}") from None
    c = exp.construction
    return dict(
        task=task,
        model=exp.model,
        limit=variant.limit or c.per_style or c.limit,
        seed=exp.seed,
        data=c.data_for(task),
        hub=c.hub,
        output_path=runs,
        model_args=exp.model_args,
        settings=settings,
        rl=rl,
    )


def _train_rl(api: Any, method: str, args: dict[str, Any], chunk_size: int, wait: bool) -> dict[str, Any]:
    res = api.train_rl(method, **args, chunk_size=chunk_size, wait=wait)
    s = res.summary
    curves = s.get("curves", {})
    return {
        "run_dir": str(res.run_dir),
        "adapter": str(res.adapter),
        "method": method,
        "steps": s.get("steps"),
        "n_task": s.get("n_task"),
        "pairs": s.get("pairs"),
        "reward_first": (curves.get("reward") or [None])[0],
        "reward_last": (curves.get("reward") or [None])[-1],
        "loss_first": (s.get("losses") or [None])[0],
        "loss_last": (s.get("losses") or [None])[-1],
    }


def train_settings(exp: Experiment, condition: str) -> Any:
    """The :class:`~selfexplain.training.TrainSettings` a condition trains with: the experiment's, then its variant's.

    Raises:
        UserError: a setting the trainer does not know, in one line naming the experiment field.
    """
    from ..training import LoraSettings, TrainSettings

    variant = exp.variants.get(condition)
    raw = {**exp.train.settings, **(variant.settings if variant else {})}
    where = f"variants.{condition}.settings" if variant else "train.settings"
    try:
        return TrainSettings(**{**raw, "lora": LoraSettings(**raw.pop("lora", {}))})
    except TypeError as e:
        raise UserError(f"experiment {exp.name}: {where}: {e}") from None


def _train_args(exp: Experiment, data: str, condition: str, settings: Any, runs: Path) -> dict[str, Any]:
    """The arguments of ``api.train`` for one condition trained on ``data`` (a constructed training file)."""
    return dict(
        data=[data],
        model=exp.model,
        mix_ratio=exp.train.mix,
        baseline=PREDICTIONS if condition == PREDICTIONS else None,
        output_path=runs,
        model_args=exp.model_args,
        settings=settings,
        replay=exp.train.replay,
    )


def _train(api: Any, args: dict[str, Any], wait: bool) -> dict[str, Any]:
    res = api.train(**args, wait=wait)
    s = res.summary
    return {
        "run_dir": str(res.run_dir),
        "adapter": str(res.adapter),
        "steps": s.get("steps"),
        "n_task": s.get("n_task"),
        "n_replay": s.get("n_replay"),
        "samples_per_second": s.get("train_samples_per_second"),
        "loss_first": (s.get("losses") or [None])[0],
        "loss_last": (s.get("losses") or [None])[-1],
    }
