"""Training routes side by side: the paper's SFT, GRPO on the faithfulness reward, DPO on ranked pairs.

The same model, the same training inputs (the first N of the task's training pool), the same LoRA and the
same number of optimiser steps; each route in a fresh process.  For each it prints:

  prepare   what the route computes before its first step: SFT constructs its explanations (erasure
            attribution and the three styles), DPO samples and judges K explanations per input, GRPO nothing
  s/step    the Trainer's runtime / optimiser steps (GRPO's steps include sampling and the reward's
            re-classification, done inside each step)
  s/input   prepare / inputs + runtime / inputs the steps saw (SFT: batch chats per step; GRPO: batch /
            group prompts; DPO: batch / group pairs)

SFT runs without instruction replay (--mix 0) so that every route trains on task inputs only.  DPO samples
--samples explanations per input (16 by default) and pairs them by --dpo-pairs (reward by default: with the
binary rule, 16 samples at temperature 1.0 gave none of 16 inputs a pair on the untrained default model,
2026-11-29: 12% of its sampled explanations were valid, one of them faithful); where no input has a pair
there is no step to time, and the row says so with the sampling's cost.  Prepare
includes loading the model for SFT (construct) and DPO (about 5 s for the default model), not for GRPO.

    .venv/bin/python benchmarks/train_routes.py                    # default model, 16 inputs, 4 steps
    .venv/bin/python benchmarks/train_routes.py --model embedded:smollm2-135m --steps 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor


def _route(method: str, model: str, n: int, steps: int, batch: int, group: int, samples: int,
           temperature: float, pairs: str) -> dict:
    from selfexplain import api
    from selfexplain.errors import NothingToTrain
    from selfexplain.rl import RLSettings
    from selfexplain.training import LoraSettings, TrainSettings

    out = tempfile.mkdtemp(prefix=f"bench-{method}-")
    settings = TrainSettings(batch_size=batch, max_steps=steps, save_steps=10_000, lora=LoraSettings(r=8))
    start = time.time()
    if method == "sft":
        built = api.construct(model=model, task="tweets", limit=n, output_path=out, styles=["attribution"])
        prepared = time.time() - start
        res = api.train([str(built.files["attribution"])], model=model, mix_ratio=0.0, output_path=out,
                        settings=settings)
        per_step_inputs = batch
    elif method == "grpo":
        prepared = 0.0
        res = api.train_rl("grpo", task="tweets", model=model, limit=n, output_path=out, settings=settings,
                           rl=RLSettings(num_generations=group, temperature=temperature))
        per_step_inputs = batch // group
    else:
        rl = RLSettings(samples=samples, temperature=temperature, pairs=pairs)
        try:
            res = api.train_rl("dpo", task="tweets", model=model, limit=n, output_path=out,
                               settings=TrainSettings(batch_size=max(1, batch // group), max_steps=steps,
                                                      save_steps=10_000, lora=LoraSettings(r=8)), rl=rl)
        except NothingToTrain:  # the sampling was timed; there is no step to time
            total = time.time() - start
            return {"method": method, "steps": 0, "prepare": total, "runtime": 0.0, "per_step": None,
                    "total": total, "per_input": total / n, "pairs": 0}
        prepared = None  # inside train_rl: taken from its summary below
        per_step_inputs = max(1, batch // group)
    total = time.time() - start
    s = res.summary
    runtime = s["train_runtime"]
    if prepared is None:
        prepared = total - runtime
    steps_done = max(s["steps"], 1)
    return {"method": method, "steps": s["steps"], "prepare": prepared, "runtime": runtime,
            "per_step": runtime / steps_done, "total": total,
            "per_input": prepared / n + runtime / (steps_done * per_step_inputs), "pairs": s.get("pairs")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--n", type=int, default=16, help="training inputs")
    ap.add_argument("--steps", type=int, default=4, help="optimiser steps per route")
    ap.add_argument("--batch", type=int, default=8, help="SFT chats / GRPO explanations per step")
    ap.add_argument("--group", type=int, default=4, help="GRPO group size (and DPO pairs per step: batch / group)")
    ap.add_argument("--samples", type=int, default=16, help="DPO explanations sampled per input to find a pair")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of GRPO and DPO")
    ap.add_argument("--dpo-pairs", default="reward", help="DPO's pair rule (train --dpo-pairs)")
    args = ap.parse_args()
    rows = []
    for method in ("sft", "grpo", "dpo"):
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            rows.append(pool.submit(_route, method, args.model, args.n, args.steps, args.batch, args.group,
                                    args.samples, args.temperature, args.dpo_pairs).result())
        r = rows[-1]
        print(f"{r['method']}: done in {r['total']:.0f}s", flush=True)
    sft = rows[0]
    print(f"\nmodel {args.model}, {args.n} inputs, {args.steps} steps, batch {args.batch}, group {args.group}, "
          f"DPO samples {args.samples} paired by {args.dpo_pairs}, temperature {args.temperature}\n")
    print("| route | prepare (s) | s/step | s/input | s/input vs sft | pairs |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        per_step = "no step: no pair" if r["per_step"] is None else f"{r['per_step']:.1f}"
        print(f"| {r['method']} | {r['prepare']:.0f} | {per_step} | {r['per_input']:.1f} | "
              f"{r['per_input'] / sft['per_input']:.2f}x | {r['pairs'] if r['pairs'] is not None else '-'} |")


if __name__ == "__main__":
    main()
