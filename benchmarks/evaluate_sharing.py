"""`evaluate` with three styles: prompts shared across turns vs computed whole, side by side.

Both run the same evaluation chunks (classification, the three one-word explanation turns, the
re-classification of every valid edit and its random baseline) on the same inputs with the same model:

  shared    the hf backend as shipped: the explanation turn decodes from the key/value cache that scoring
            the classification prompt left, the three styles of a sample share it, only the rest of each
            prompt is computed; a chunk's 48 explanations decode in one batch
  whole     share_prompts=False: transformers' generate on whole left-padded prompts, batches of 16 (the
            previous code, as shipped before)
  whole-64  the same with batches of 64: what wider decoding batches alone give, without sharing

Each method runs in its own fresh process, once.  The script checks that predictions, explanations and
verdicts are identical (and lists any difference) and counts the tokens each method pushes through the
model: prompt tokens computed, decoded tokens (for transformers' generate, every row of a batch until
its longest reply ends, as it computes them; the shared decoder drops finished rows) and scored tokens.
The speed-up is reported against the ratio of those counts, the ceiling that computing fewer tokens
allows.

    .venv/bin/python benchmarks/evaluate_sharing.py            # 64 tweets, default model
    .venv/bin/python benchmarks/evaluate_sharing.py --n 16     # quicker
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor

STYLES = ["attribution", "redaction", "counterfactual"]


def _count_tokens(be) -> dict[str, int]:
    """Wraps the backend's forward entry points to count the tokens each computes."""
    counts = {"prompt": 0, "decoded": 0, "scored": 0}
    decode_batch, generate_plain, last = be._decode_batch, be.generate_plain, be._last_distributions

    def counted_decode(prompt_ids, batch, budgets):
        out = decode_batch(prompt_ids, batch, budgets)
        rows = [(prefix, i) for prefix, members in batch for i in members]
        counts["prompt"] += len(rows) * max(len(prompt_ids[i]) - len(p) for p, i in rows)  # the right-padded rest
        counts["prompt"] += sum(len(p) for p, _ in batch if p not in be._prompt_kv)  # prefixes not kept
        counts["decoded"] += sum(g.n_tokens + (not g.truncated) for g in out)
        return out

    def counted_plain(chats, budgets):
        out = generate_plain(chats, budgets)
        ids = [be.prompt_ids(c) for c in chats]
        for batch in be._batches([len(p) for p in ids]):  # generate_plain's batches, left-padded
            counts["prompt"] += len(batch) * max(len(ids[i]) for i in batch)
            steps = max(min(out[i].n_tokens + 1, budgets[i]) for i in batch)
            counts["decoded"] += len(batch) * steps
        return out

    def counted_last(seqs, keeps):
        from selfexplain.backends.hf.forward import common_prefix_len

        n_prefix = common_prefix_len(seqs)
        counts["scored"] += sum(len(s) for s in seqs) - (len(seqs) - 1) * min(n_prefix, min(len(s) for s in seqs))
        return last(seqs, keeps)

    be._decode_batch, be.generate_plain, be._last_distributions = counted_decode, counted_plain, counted_last
    return counts


def run(method: str, model: str, n: int, chunk: int = 16):
    from selfexplain.api import sample_examples
    from selfexplain.backends.hf import HFBackend
    from selfexplain.evaluation import evaluate_chunk
    from selfexplain.tasks import get_task

    task = get_task("tweets")
    exs = sample_examples(task, n, 0, None, False, "test")
    be = HFBackend(model, share_prompts=(method == "shared"), max_batch_size=64 if method == "whole-64" else 16)
    counts = _count_tokens(be)
    t = time.perf_counter()
    records = []
    for c, i in enumerate(range(0, len(exs), chunk)):
        records += evaluate_chunk(be, task, c, exs[i:i + chunk], STYLES, "one", random_seed=0)
    secs = time.perf_counter() - t
    keep = ("sample_id", "style", "prediction", "raw_explanation", "valid", "new_prediction", "random_prediction")
    return {"secs": secs, "counts": counts, "records": [{k: getattr(r, k) for k in keep} for r in records]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--model", default="embedded")
    args = ap.parse_args()
    results = {}
    for method in ("whole", "whole-64", "shared"):
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            results[method] = pool.submit(run, method, args.model, args.n).result()
        r = results[method]
        print(f"{method:8s} {r['secs']:8.1f} s   tokens: prompt {r['counts']['prompt']}, decoded "
              f"{r['counts']['decoded']}, scored {r['counts']['scored']}", flush=True)
    w, s = results["whole"], results["shared"]
    diffs = [(a, b) for a, b in zip(w["records"], s["records"]) if a != b]
    diffs64 = sum(a != b for a, b in zip(w["records"], results["whole-64"]["records"]))
    tokens = {m: sum(results[m]["counts"].values()) for m in results}
    speedup, ceiling = w["secs"] / s["secs"], tokens["whole"] / tokens["shared"]
    print(f"\n{args.n} tweets, {len(STYLES)} styles, one-word, model {args.model}")
    print(f"speed-up shared vs whole: {speedup:.2f}x (whole-64 vs whole: {w['secs'] / results['whole-64']['secs']:.2f}x, "
          f"shared vs whole-64: {results['whole-64']['secs'] / s['secs']:.2f}x)")
    print(f"token-count ceiling: {ceiling:.2f}x ({tokens['whole']} vs {tokens['shared']} tokens through the model); "
          f"reached {speedup / ceiling:.0%} of it")
    print(f"identical records, shared vs whole: {len(w['records']) - len(diffs)}/{len(w['records'])} "
          f"(whole-64 vs whole: {len(w['records']) - diffs64}/{len(w['records'])})")
    for a, b in diffs:
        print(f"  differs: {a['sample_id']} {a['style']}: {a} vs {b}")


if __name__ == "__main__":
    main()
