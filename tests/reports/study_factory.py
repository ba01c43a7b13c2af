"""A synthetic study folder (study.json + run folders of records) for report tests.

Records are random but internally consistent (edited inputs follow the style,
faithful only when valid), so tables can be recomputed from them independently.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict
from pathlib import Path

from selfexplain.evaluation import SampleRecord
from selfexplain.experiments import Experiment
from selfexplain.words import REDACTED

WORDS = "i love hate the rain today so much sad happy movie went great terrible friends no".split()
STYLES = ["attribution", "redaction", "counterfactual"]
CONDITIONS = ["none", "predictions", "attribution", "redaction", "counterfactual"]
EVALS = [("tweets", "one"), ("tweets", "multi"), ("vitaminc", "one")]


def _record(rng: random.Random, chunk: int, sid: str, task: str, style: str, width: str, skew: float) -> dict:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 9))]
    text = " ".join(words)
    labels = ["Negative", "Positive"] if task == "tweets" else ["True", "False", "Neither"]
    gold, pred = rng.choice(labels), rng.choice(labels)
    rng = random.Random(f"{sid}|{style}")  # the input and gold above are the sample's, the rest per style
    valid = rng.random() < 0.7
    n = 1 if width == "one" else rng.randint(1, 5)
    edited = parsed = None
    if style == "attribution":
        parsed = list(dict.fromkeys(words))[:n]
        edited = " ".join(REDACTED if w in parsed else w for w in words)
    elif style == "redaction":
        pos = set(rng.sample(range(len(words)), min(n, len(words))))
        edited = " ".join(REDACTED if i in pos else w for i, w in enumerate(words))
        parsed = edited
    else:
        new = list(words)
        new[0] = "splendid"
        if n > 1:
            del new[-1]
        edited = " ".join(new)
        parsed = edited
    faithful = valid and rng.random() < skew
    rnd = valid and rng.random() < 0.3
    other = next(l for l in labels if l != pred)
    rec = SampleRecord(
        chunk=chunk, sample_id=sid, task=task, style=style, width=width, input=text, context=None, gold=gold,
        prediction=pred, label_probs={l: 1 / len(labels) for l in labels}, label_logprobs={l: -1.0 for l in labels},
        raw_explanation=f"Answer: {parsed}", explanation_truncated=False, parsed=parsed, valid=valid,
        reason=None if valid else rng.choice(["word_not_in_input", "wrong_word_count"]), n=n if valid else None,
        edited_input=edited if valid else None, new_prediction=(other if faithful else pred) if valid else None,
        new_label_probs=None, faithful=faithful if valid else None,
        random_input=edited if valid else None, random_prediction=(other if rnd else pred) if valid else None,
        random_faithful=rnd if valid else None,
    )
    return asdict(rec)


def make_study(root: Path, n: int = 30, seed: int = 0) -> Path:
    rng = random.Random(seed)
    exp = Experiment(name="synthetic", model="embedded", train_tasks=["tweets"],
                     evaluate=[{"task": "tweets", "widths": ["one", "multi"], "limit": n},
                               {"task": "vitaminc", "widths": ["one"], "limit": n}])
    runs = root / "runs"
    cells, stages = [], {}
    for cond in CONDITIONS:
        skew = 0.2 if cond == "none" else 0.6
        for task, width in EVALS:
            run = runs / f"evaluate-{cond}-{task}-{width}"
            run.mkdir(parents=True)
            lines = []
            for i in range(n):
                # The same samples (ids, inputs, gold) in every cell, as in a real study.
                # The classification turn is shared by the styles of one sample.
                prng = random.Random(f"{seed}|{cond}|{task}|{width}|{i}")
                flip = prng.random() < 0.3
                for style in STYLES:
                    srng = random.Random(f"{seed}|{task}|{i}")  # same input and gold for every style
                    r = _record(srng, i // 10, f"{task}-{i}", task, style, width, skew)
                    # Only outcomes vary with the model.
                    orng = random.Random(f"{seed}|{cond}|{task}|{width}|{style}|{i}")
                    labels = list(r["label_probs"])
                    r["prediction"] = next(l for l in labels if l != r["gold"]) if flip else r["gold"]
                    valid = orng.random() < (0.6 if cond == "none" else 0.8)
                    faithful = valid and orng.random() < skew
                    if not valid:
                        r.update(valid=False, reason="wrong_word_count", faithful=None, new_prediction=None,
                                 edited_input=None, random_prediction=None, random_faithful=None, random_input=None,
                                 n=None)
                    else:
                        rnd = orng.random() < 0.3
                        labels = list(r["label_probs"])
                        y = r["prediction"]

                        def probs(p_y):  # p(ŷ) after an edit; the rest spread over the other labels
                            return {l: p_y if l == y else (1 - p_y) / (len(labels) - 1) for l in labels}

                        r.update(valid=True, reason=None, faithful=faithful, random_faithful=rnd,
                                 random_prediction="X" if rnd else r["prediction"],
                                 new_prediction="X" if faithful else r["prediction"],
                                 new_label_probs=probs(orng.uniform(0.0, 0.3) if faithful else orng.uniform(0.3, 0.6)),
                                 random_label_probs=probs(orng.uniform(0.0, 0.3) if rnd else orng.uniform(0.3, 0.6)))
                        if r["edited_input"] is None:
                            r["edited_input"] = r["input"]
                        if r["n"] is None:
                            r["n"] = 1
                    lines.append(json.dumps(r))
            (run / "records.jsonl").write_text("".join(l + "\n" for l in lines))
            # A finished run: its configuration (styles, limit) and summary (samples drawn), as evaluate writes them.
            (run / "config.json").write_text(json.dumps({
                "command": "evaluate", "backend": "hf", "styles": STYLES, "data": {"limit": n}, "width": width,
                "task": {"name": task}, "model": {"kind": "embedded", "name": "synthetic", "dtype": "float32",
                                                   **({"adapter": f"{cond:0<64}"} if cond != "none" else {})}}))
            (run / "summary.json").write_text(json.dumps({"n_samples": n}))
            cells.append({"condition": cond, "train_task": None if cond == "none" else "tweets", "eval_task": task,
                          "width": width, "run_dir": str(run), "seconds": 1.0})
    # A construction run with its quality check (table 3).
    crun = runs / "construct-tweets"
    q = crun / "quality-abc"
    q.mkdir(parents=True)
    built, originals = [], []
    for i in range(n):
        flip = rng.random() < 0.5
        label, other = ("Positive", "Negative") if i % 2 else ("Negative", "Positive")  # a model that reads its input
        built.append({"attribution": {"sample_id": f"c{i}", "prediction": label, "w_star_index": 0,
                                      "erased_predictions": [other if flip else label]},
                      "constructed": {s: {"explanation": None if (s == "counterfactual" and i % 4 == 0) else "x"}
                                      for s in STYLES},
                      "cf_new_prediction": other if i % 3 else label})
    for i in range(n // 2):
        for style in STYLES:
            r = _record(rng, 0, f"c{i}", "tweets", style, "one", 0.2)
            originals.append(r)
    (crun / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in built))
    # the training files hold the first third of each style's kept explanations
    (crun / "construction.json").write_text(json.dumps({"n_samples": n, "train_size": n // 3, "only_flipping": False}))
    (q / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in originals))
    stages["construct|tweets"] = {"run_dir": str(crun), "seconds": 2.0}
    (root / "study.json").write_text(json.dumps({"experiment": exp.model_dump(), "stages": stages, "cells": cells}))
    return root


def add_variant(root: Path, name: str, variant: dict, edit, seconds: float | None = None) -> dict:
    """Add condition ``name`` (experiment variant ``variant``) to the study at ``root``: a copy of w/ attribution's
    cells, each record passed through ``edit(record)`` (which changes it in place).  Returns study.json's content
    as written, for a test to add stages to."""
    study = json.loads((root / "study.json").read_text())
    study["experiment"]["conditions"].append(name)
    study["experiment"]["variants"] = {**(study["experiment"].get("variants") or {}), name: variant}
    for c in list(study["cells"]):
        if c["condition"] != "attribution":
            continue
        run = Path(c["run_dir"])
        copy = run.with_name(run.name.replace("attribution", name))
        shutil.copytree(run, copy)
        records = [json.loads(line) for line in (copy / "records.jsonl").read_text().splitlines()]
        for r in records:
            edit(r)
        (copy / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        study["cells"].append({**c, "condition": name, "run_dir": str(copy),
                               **({"seconds": seconds} if seconds is not None else {})})
    (root / "study.json").write_text(json.dumps(study))
    return study


def add_seed(root: Path, condition: str, seed: int, edit) -> None:
    """Add a further training seed of ``condition``: a copy of its cells (``seed`` set), each record passed
    through ``edit(record)``."""
    study = json.loads((root / "study.json").read_text())
    for c in list(study["cells"]):
        if c["condition"] != condition or c.get("seed") is not None:
            continue
        run = Path(c["run_dir"])
        copy = run.with_name(f"{run.name}-seed{seed}")
        shutil.copytree(run, copy)
        records = [json.loads(line) for line in (copy / "records.jsonl").read_text().splitlines()]
        for r in records:
            edit(r)
        (copy / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        study["cells"].append({**c, "run_dir": str(copy), "seed": seed})
    study["experiment"]["train"]["seeds"] = {**(study["experiment"]["train"].get("seeds") or {}),
                                             condition: [*(study["experiment"]["train"].get("seeds") or {}).get(
                                                 condition, []), seed]}
    (root / "study.json").write_text(json.dumps(study))
