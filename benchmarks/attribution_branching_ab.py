"""Erasure attribution with and without branching from the input's cache, A/B in one process.

Same backend, same 16 held-out tweets, two rounds alternating sharing off / on (``share_prompts``, which
also turns the branching of erased variants off); prints the times and checks that w* and every
influence agree within 1e-4.

    .venv/bin/python benchmarks/attribution_branching_ab.py
"""
import time
from selfexplain.api import sample_examples
from selfexplain.attribution import attribute
from selfexplain.backends.hf import HFBackend
from selfexplain.tasks import get_task
task = get_task("tweets")
exs = sample_examples(task, 16, 0, None, False, "test")
be = HFBackend("embedded", max_batch_size=64)
res = {}
for rnd in range(2):
    for share in (False, True):
        be.share_prompts = share
        be._prompt_kv.clear()
        t = time.perf_counter()
        out = attribute(be, task, exs)
        res.setdefault(share, []).append(time.perf_counter() - t)
        if rnd == 0: res[(share, "w")] = [(a.w_star, a.influence) for a in out]
print("no branching", res[False], "branching", res[True])
same = all(x[0] == y[0] and max(abs(p - q) for p, q in zip(x[1], y[1])) < 1e-4 for x, y in zip(res[(False, "w")], res[(True, "w")]))
print("same w* and influences within 1e-4:", same)
