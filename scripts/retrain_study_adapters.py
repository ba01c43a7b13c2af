"""Retrain a committed study's SFT adapters in their recorded folders, so ``selfexplain rejudge`` can use them.

Adapter weights are never committed, so a fresh clone of a study has none, and ``rejudge`` (which re-scores a
cell with the very adapter it recorded, refusing one whose hash differs) has nothing to load.  CPU training is
bit-reproducible, so each SFT condition is trained again exactly as ``reproduce`` trained it (the same
``api.train`` arguments, hence the same configuration-named folder); the folder's committed ``train_summary.json``
and ``compute.json`` are put back afterwards, so the study's record keeps the original run's times.

    .venv/bin/python scripts/retrain_study_adapters.py docs/results/cpu-medium/cpu-medium predictions attribution

RL conditions (GRPO, DPO) are not handled: their training draws samples and is retrained by ``reproduce``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def main(root: Path, conditions: list[str]) -> int:
    from selfexplain import api
    from selfexplain.layout import model_key
    from selfexplain.study.config import Experiment
    from selfexplain.study.grid import _train_args, train_settings

    record = json.loads((root / "study.json").read_text())
    exp = Experiment.model_validate(record["experiment"])
    failed = 0
    for condition in conditions:
        variant = exp.variants.get(condition)
        if variant is not None and variant.method != "sft":
            print(f"{condition}: {variant.method} is not SFT; retrain it with reproduce", flush=True)
            failed += 1
            continue
        task = exp.train_tasks[0]
        stage = record["stages"][f"train|{model_key(condition, task)}"]
        built = record["stages"][f"construct|{task}" + (f"|{variant.source_model}" if variant and
                                                       variant.source_model else "")]
        style = exp.trains_on(condition)
        data = root / built["files"]["attribution" if style == "predictions" else style]
        args = _train_args(exp, str(data), style, train_settings(exp, condition), root / "runs")
        want = root / stage["run_dir"]
        started = time.time()
        res = api.train(**args, wait=True)
        if Path(res.run_dir).resolve() != want.resolve():
            print(f"{condition}: trained into {res.run_dir}, the study recorded {want}", flush=True)
            failed += 1
            continue
        subprocess.run(["git", "checkout", "--", "train_summary.json", "compute.json"], cwd=want, check=False)
        done = "already trained there" if res.summary.get("cached") else "retrained"
        print(f"{condition}: {want.name} {done} ({time.time() - started:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
