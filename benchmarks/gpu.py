"""The GPU check (issue 24): what the hf backend does on a card, each figure beside the ceiling it measured.

In one process, on one device:

  matmul      bf16 (fp32 on CPU) n x n x n products: the device's matrix rate R (FLOP/s)
  copy        a large device-to-device copy: the memory bandwidth B (bytes/s, read + write)
  attribute   erasure attribution of --attr tweets on a 7B-shaped model (Tulu-2 7B's dimensions, random
              weights, the Tulu stand-in's Llama-2 tokenizer): FLOPs counted by torch's FlopCounterMode,
              reported as a share of R
  score       label scoring of --chats classification chats: the same
  batching    the sizes the backend planned from the device's free memory (issue 24's planner)
  generate    greedy explanations for --chats chats: ms per decode step beside the weight-read floor
              (weight bytes / B), with the planned batching (static cache, compiled on CUDA) and with the
              backend's old fixed sizes (16 rows, eager, shared cache) side by side; the first, compiling
              call is timed apart.  Random weights run every reply to its token budget: an upper bound
  evaluate    three styles on --eval tweets: sample-styles per second, planned and old sizes side by side
  agreement   (CUDA only) SmolLM2-135M in fp32 on the card against fp32 on the CPU: predictions,
              explanations and label log-probabilities, through `compare`

    python benchmarks/gpu.py --out results/benchmarks/gpu-h200.json        # on a GPU machine, a few minutes
    python benchmarks/gpu.py --device cpu --shape tiny --attr 2 --chats 4 --eval 2   # the script's own check

No figure is printed that was not measured in this process.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

SHAPES = {  # Llama-2 7B (Tulu-2 7B) and a tiny one for checking the script on a CPU
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4),
}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device: str, fn, repeat: int = 1) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeat


def matmul_rate(device: str, dtype, n: int) -> float:
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    return 2 * n ** 3 / _timed(device, lambda: a @ b, repeat=5)


def copy_bandwidth(device: str, mbytes: int) -> float:
    import torch

    src = torch.empty(mbytes * 2 ** 20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2 * src.numel() / _timed(device, lambda: dst.copy_(src), repeat=5)  # read + write


def shaped_model(shape: str, device: str, dtype):
    """A random-weight Llama of ``shape`` behind the Tulu stand-in's tokenizer, as an hf backend."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selfexplain.backends.hf import HFBackend
    from selfexplain.models import load_model

    _, tokenizer, _ = load_model("standin:tulu-tiny")
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **SHAPES[shape])
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    identity = {"kind": "benchmark", "name": f"llama-{shape}-random", "dtype": str(dtype).split(".")[-1]}
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return HFBackend.from_loaded(model, tokenizer, identity), weight_bytes


def counted(device: str, fn) -> tuple[float, float]:
    """(seconds, FLOPs) of one call, FLOPs as torch's FlopCounterMode counts them (a second, timed call)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return _timed(device, fn), float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shape", default="7b", choices=sorted(SHAPES))
    ap.add_argument("--attr", type=int, default=16, help="tweets for erasure attribution")
    ap.add_argument("--chats", type=int, default=64, help="chats for label scoring and generation")
    ap.add_argument("--eval", type=int, default=16, help="tweets for the three-style evaluate")
    ap.add_argument("--matmul", type=int, default=8192)
    ap.add_argument("--out", help="also write the figures to this JSON file")
    args = ap.parse_args()

    import torch

    from selfexplain import api
    from selfexplain.attribution import attribute
    from selfexplain.backends.hf import HFBackend
    from selfexplain.evaluation import classify, explain_chat, token_budget
    from selfexplain.tasks import get_task

    cuda = args.device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    fig: dict = {"device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
                 "torch": torch.__version__, "shape": args.shape, "dtype": str(dtype).split(".")[-1]}
    rate = matmul_rate(args.device, dtype, args.matmul if cuda else min(args.matmul, 2048))
    bandwidth = copy_bandwidth(args.device, 2048 if cuda else 256)
    fig.update(matmul_tflops=rate / 1e12, copy_gbps=bandwidth / 1e9)
    print(f"matmul {rate / 1e12:.1f} TFLOP/s ({fig['dtype']}); copy {bandwidth / 1e9:.0f} GB/s")

    be, weight_bytes = shaped_model(args.shape, args.device, dtype)
    task = get_task("tweets")
    tweets = api.sample_examples(task, max(args.attr, args.chats, args.eval), 0, None, False, "test")
    seconds, flops = counted(args.device, lambda: attribute(be, task, tweets[:args.attr]))
    fig.update(attribute_s=seconds, attribute_share=flops / seconds / rate)
    print(f"attribute {args.attr} tweets: {seconds:.2f} s, {flops / seconds / 1e12:.1f} TFLOP/s = "
          f"{flops / seconds / rate:.0%} of the matrix rate")
    items = [(ex.text, ex.context) for ex in tweets[:args.chats]]
    seconds, flops = counted(args.device, lambda: classify(be, task, items))
    fig.update(score_s=seconds, score_share=flops / seconds / rate)
    print(f"score {args.chats} chats: {seconds:.2f} s = {flops / seconds / rate:.0%} of the matrix rate")
    preds = classify(be, task, items)
    chats = [explain_chat(task, ex, p.label, "counterfactual", "one") for ex, p in zip(tweets, preds)]
    budget = min(token_budget("counterfactual", "one", ex.text) for ex in tweets[:args.chats])
    fig["batching"] = be.batching.to_dict()
    print(f"batching: {be.batching.planned}: {be.batching.max_batch_size} rows / {be.batching.max_batch_tokens} "
          f"tokens per scoring forward, {be.batching.decode_rows} rows decoded together, "
          f"{'static' if be.batching.static_cache else 'shared'} cache")
    floor = weight_bytes / bandwidth
    # the backend before the planner, side by side
    eager = HFBackend.from_loaded(be.model, be.tokenizer, be.identity, static_cache=False, max_batch_size=16,
                                  max_batch_tokens=8192, decode_rows=64)
    for name, backend in (("planned", be), ("eager-16", eager)):
        started = time.perf_counter()
        backend.generate(chats, [budget] * len(chats))  # the first call compiles (static cache on CUDA)
        first = time.perf_counter() - started
        gens: list = []
        seconds = _timed(args.device, lambda: gens.extend(backend.generate(chats, [budget] * len(chats))))
        steps = max(g.n_tokens for g in gens)
        per_step = seconds / steps
        fig[f"decode_{name}"] = {"ms_per_step": per_step * 1e3, "floor_ms": floor * 1e3,
                                 "vs_floor": per_step / floor, "first_call_s": first}
        print(f"generate {args.chats} chats ({name}): {per_step * 1e3:.1f} ms per decode step ({steps} steps; "
              f"first call {first:.1f} s); weight-read floor {floor * 1e3:.1f} ms: {per_step / floor:.1f}x the floor")
    import tempfile

    for name, backend in (("planned", be), ("eager-16", eager)):
        start = time.perf_counter()
        api.evaluate(limit=args.eval, batch_size=args.eval, output_path=tempfile.mkdtemp(), backend_instance=backend)
        seconds = time.perf_counter() - start
        fig[f"evaluate_{name}_sample_styles_per_s"] = 3 * args.eval / seconds
        print(f"evaluate 3 styles x {args.eval} tweets ({name}): {3 * args.eval / seconds:.2f} sample-styles/s")
    print(f"evaluate, planned / eager-16: {fig['evaluate_planned_sample_styles_per_s'] / fig['evaluate_eager-16_sample_styles_per_s']:.1f}x")

    if cuda:
        from selfexplain.backends import load_backend
        from selfexplain.reports.compare import compare_runs

        runs = {}
        for device in ("cpu", args.device):
            small = load_backend("hf", "embedded:smollm2-135m", dtype="float32", device=device)
            runs[device] = api.evaluate(limit=24, output_path=tempfile.mkdtemp(), backend_instance=small).records
        report = compare_runs(runs["cpu"], runs[args.device])
        fig.update(agreement_predictions=report.prediction_agreement, agreement_explanations=report.explanation_agreement,
                   agreement_max_prob_diff=report.max_prob_diff)
        print(f"fp32 {args.device} vs fp32 cpu (SmolLM2, 24 tweets x 3 styles): predictions "
              f"{report.prediction_agreement:.0%}, explanations {report.explanation_agreement:.0%}, largest "
              f"label-probability difference {report.max_prob_diff:.1e}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(fig, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
