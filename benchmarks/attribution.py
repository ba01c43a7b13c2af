"""Erasure attribution throughput: selfexplain vs the plain loop vs Captum, side by side.

All three compute, for the same model and the same inputs, the probability of
the predicted label once for the input and once per distinct word erased with
"[REDACTED]" (every occurrence):

  ours    selfexplain.attribution.attribute: every variant of a chunk of 16 inputs
          in one scoring call (shared-prefix KV cache, each erased variant branching
          from its input's cache at its first differing token, length buckets,
          vocabulary projection at the last position only)
  plain   one full forward pass per variant, batch size 1
  captum  captum.attr.LLMAttribution(FeatureAblation) over a TextTemplateInput whose
          features are the words (occurrences of a word grouped by a mask) with
          "[REDACTED]" baselines, target = the predicted label

Each method runs in its own fresh process (peak RSS is per method).  The script
checks that ours and plain agree (same w*, probabilities within 1e-4) and
measures the machine's fp32 matmul throughput to report what fraction of it
our path achieves.

    .venv/bin/pip install -e ".[bench]"                  # captum
    .venv/bin/python benchmarks/attribution.py            # 64 tweets, default model
    .venv/bin/python benchmarks/attribution.py --n 16     # quicker
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from concurrent.futures import ProcessPoolExecutor


def _examples(n: int):
    from selfexplain.api import sample_examples
    from selfexplain.tasks import get_task

    task = get_task("tweets")
    return task, sample_examples(task, n, 0, None, False, "test")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(model: str):
    from selfexplain.backends.hf import HFBackend

    return HFBackend(model, max_batch_size=64)


def run_ours(model: str, n: int, chunk: int = 16):
    from selfexplain.attribution import attribute

    task, exs = _examples(n)
    be = _load(model)
    rss0 = _rss_mb()
    t = time.perf_counter()
    out = []
    for i in range(0, len(exs), chunk):
        out += attribute(be, task, exs[i:i + chunk])
    secs = time.perf_counter() - t
    return {"secs": secs, "rss0": rss0, "rss": _rss_mb(), "result": [(a.w_star, a.influence, a.label_probs) for a in out],
            "flops": _flops(be, task, exs)}


class _Plain:
    def __init__(self, be):
        self.be = be

    def label_logprobs(self, chats, labels):
        return self.be.label_logprobs_plain(chats, labels)


def run_plain(model: str, n: int):
    from selfexplain.attribution import attribute

    task, exs = _examples(n)
    be = _load(model)
    rss0 = _rss_mb()
    t = time.perf_counter()
    out = attribute(_Plain(be), task, exs)
    secs = time.perf_counter() - t
    return {"secs": secs, "rss0": rss0, "rss": _rss_mb(), "result": [(a.w_star, a.influence, a.label_probs) for a in out]}


def run_captum(model: str, n: int):
    import torch
    from captum.attr import FeatureAblation, LLMAttribution, TextTemplateInput

    from selfexplain import words as W
    from selfexplain.evaluation import classify, classify_chat

    task, exs = _examples(n)
    be = _load(model)
    preds = classify(be, task, [(e.text, e.context) for e in exs])  # targets; not timed
    llm_attr = LLMAttribution(FeatureAblation(be.model), be.tokenizer)
    rss0 = _rss_mb()
    t = time.perf_counter()
    w_stars = []
    for ex, pred in zip(exs, preds):
        marker = "\x00INPUT\x00"
        prompt = be.prompt_text(classify_chat(task, marker, ex.context)).replace("{", "{{").replace("}", "}}")
        toks = W.tokenize(ex.text)
        pieces, values, mask, ids = [], [], [], {}
        for tok in toks:
            esc = lambda s: s.replace("{", "{{").replace("}", "}}")
            if tok.is_word:
                pieces.append(esc(tok.prefix) + "{}" + esc(tok.suffix))
                values.append(tok.core)
                mask.append(ids.setdefault(tok.key, len(ids)))
            else:
                pieces.append(esc(tok.text))
        template = prompt.replace(marker, " ".join(pieces))
        if not values:
            w_stars.append(None)
            continue
        inp = TextTemplateInput(template, values=values, baselines=[W.REDACTED] * len(values), mask=mask)
        with torch.inference_mode():
            res = llm_attr.attribute(inp, target=pred.label)
        attr = res.seq_attr.tolist()
        keys = list(ids)
        w_stars.append(keys[max(range(len(keys)), key=lambda i: (attr[i], -i))])
    secs = time.perf_counter() - t
    return {"secs": secs, "rss0": rss0, "rss": _rss_mb(), "w_stars": w_stars}


def _flops(be, task, exs) -> float:
    """Multiply-add FLOPs our path performs: decoder weights per token processed + the head per scored position."""
    from selfexplain import words as W
    from selfexplain.backends.hf.forward import common_prefix_len
    from selfexplain.evaluation import classify_chat

    seqs = []
    for i in range(0, len(exs), 16):
        part = []
        for ex in exs[i:i + 16]:
            texts = [ex.text] + [W.replace_words(ex.text, {k}) for k in W.unique_keys(ex.text)]
            part += [be.prompt_ids(classify_chat(task, t, ex.context)) for t in texts]
        prefix = common_prefix_len(part)
        seqs.append((prefix, part))
    decoder = be.model.get_decoder()
    layer_params = sum(p.numel() for n, p in decoder.named_parameters() if "embed" not in n)
    head = be.model.get_output_embeddings().weight.numel()
    tokens = 0
    for prefix, part in seqs:
        # Variants that branch from their input's cache compute only the tokens after the branch point.
        plan = be._branch_plan(part, [1] * len(part), prefix) if be.share_prompts else {}
        tokens += prefix + sum(len(s) - (plan[i][1] if i in plan else prefix) for i, s in enumerate(part))
    positions = sum(len(part) for _, part in seqs)
    return 2.0 * layer_params * tokens + 2.0 * head * positions


def matmul_gflops(size: int = 2048, reps: int = 10) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * size ** 3 * reps / (time.perf_counter() - t) / 1e9


def _in_child(fn, *args):
    # A process pool executor, not multiprocessing.Pool: when a worker dies (out of memory, say)
    # Pool silently starts another and waits forever; the executor raises BrokenProcessPool.
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--skip-captum", action="store_true")
    args = ap.parse_args()

    peak = _in_child(matmul_gflops)
    ours = _in_child(run_ours, args.model, args.n)
    plain = _in_child(run_plain, args.model, args.n)
    captum = None if args.skip_captum else _in_child(run_captum, args.model, args.n)

    same_w = sum(o[0] == p[0] for o, p in zip(ours["result"], plain["result"]))
    diff = max(
        [abs(a - b) for o, p in zip(ours["result"], plain["result"]) for a, b in zip(o[1], p[1])]
        + [abs(o[2][k] - p[2][k]) for o, p in zip(ours["result"], plain["result"]) for k in o[2]]
    )
    n = args.n
    print(f"inputs: {n} tweets, model {args.model}, torch threads as default")
    print(f"{'method':8} {'seconds':>8} {'samples/s':>10} {'peak RSS MB':>12} {'RSS over loaded model MB':>25}")
    rows = [("ours", ours), ("plain", plain)] + ([("captum", captum)] if captum else [])
    for name, r in rows:
        print(f"{name:8} {r['secs']:8.1f} {n / r['secs']:10.2f} {r['rss']:12.0f} {r['rss'] - r['rss0']:25.0f}")
    print(f"speed-up vs plain loop: {plain['secs'] / ours['secs']:.1f}x")
    if captum:
        print(f"speed-up vs Captum LLMAttribution(FeatureAblation): {captum['secs'] / ours['secs']:.1f}x")
        same_c = sum(o[0] is not None and c is not None and o[0].casefold() == c for o, c in zip(ours["result"], captum["w_stars"]))
        print(f"w* agreement with Captum (raw log-prob target, not label-normalised): {same_c}/{n}")
    print(f"agreement with plain loop: same w* {same_w}/{n}, max |difference| {diff:.2e}")
    achieved = ours["flops"] / ours["secs"] / 1e9
    print(f"fp32 matmul peak (2048x2048): {peak:.1f} GFLOP/s; ours achieves {achieved:.1f} GFLOP/s "
          f"= {achieved / peak:.0%} of it")


if __name__ == "__main__":
    main()
