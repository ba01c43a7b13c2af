"""Retrain a committed study's adapters in their recorded folders, so ``selfexplain rejudge`` can use them.

Adapter weights are never committed, so a fresh clone of a study has none, and ``rejudge`` (which re-scores a
cell with the very adapter it recorded, refusing one whose hash differs) has nothing to load.  CPU training is
bit-reproducible, so each SFT condition is trained again exactly as ``reproduce`` trained it (the same
``api.train`` arguments, hence the same configuration-named folder); the folder's committed ``train_summary.json``
and ``compute.json`` are put back afterwards, so the study's record keeps the original run's times.

    .venv/bin/python scripts/retrain_study_adapters.py docs/results/cpu-medium/cpu-medium predictions attribution

RL conditions (GRPO, DPO) are retrained the same way: their sampling is seeded, so on the same CPU it is expected to
draw the same rollouts; every committed file the retraining rewrote is listed (``git diff --stat``: a difference
means the run did not reproduce, and ``rejudge`` will refuse its adapter) and then put back.
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
    from selfexplain.study.grid import _train_args, _train_rl, _train_rl_args, train_settings

    record = json.loads((root / "study.json").read_text())
    exp = Experiment.model_validate(record["experiment"])
    failed = 0
    for condition in conditions:
        variant = exp.variants.get(condition)
        task = exp.train_tasks[0]
        stage = record["stages"][f"train|{model_key(condition, task)}"]
        want = root / stage["run_dir"]
        settings = train_settings(exp, condition)
        started = time.time()
        if variant is not None and variant.method != "sft":
            args = _train_rl_args(exp, task, variant, settings, root / "runs")
            res = _train_rl(api, variant.method, args, exp.chunk_size, wait=True)
            run_dir, cached = res["run_dir"], False
        else:
            built = record["stages"][
                f"construct|{task}" + (f"|{variant.source_model}" if variant and variant.source_model else "")
            ]
            style = exp.trains_on(condition)
            data = root / built["files"]["attribution" if style == "predictions" else style]
            out = api.train(**_train_args(exp, str(data), style, settings, root / "runs"), wait=True)
            run_dir, cached = str(out.run_dir), bool(out.summary.get("cached"))
        if Path(run_dir).resolve() != want.resolve():
            print(f"{condition}: trained into {run_dir}, the study recorded {want}", flush=True)
            failed += 1
            continue
        changed = subprocess.run(["git", "diff", "--stat", "--", "."], cwd=want, capture_output=True, text=True).stdout
        moved = [
            line
            for line in changed.splitlines()[:-1]
            if not any(k in line for k in ("compute.json", "train_summary.json"))
        ]
        if moved:
            print(f"{condition}: the retraining rewrote committed files differently:\n" + "\n".join(moved), flush=True)
        # The study's record keeps the original run's times and summary.
        subprocess.run(["git", "checkout", "--", "."], cwd=want, check=False)
        done = "already trained there" if cached else "retrained"
        print(f"{condition}: {want.name} {done} ({time.time() - started:.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
