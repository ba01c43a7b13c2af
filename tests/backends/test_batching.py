"""The batching planner: memory -> batch sizes (pure), and how the hf backend takes its plan."""

import json
from types import SimpleNamespace

import pytest

from selfexplain.backends.batching import CPU, MAX_TOKENS, Footprint, plan, with_overrides
from selfexplain.errors import UserError

GiB = 2 ** 30
# Tulu-2 7B's (Llama-2 7B's) dimensions, bf16
LLAMA_7B = SimpleNamespace(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                           num_key_value_heads=32)


def test_footprint_of_a_7b_model():
    fp = Footprint.of(LLAMA_7B, 2, weight_bytes=13_476_839_424)
    assert fp.kv_bytes_per_token == 2 * 32 * 4096 * 2 == 524_288  # 0.5 MiB of keys and values per token
    assert fp.activation_bytes_per_token == 2 * (6 * 4096 + 3 * 11008) + 4 * 32 * 1024


def test_a_cpu_keeps_the_sizes_it_was_tuned_with():
    fp = Footprint.of(LLAMA_7B, 4, 0)
    assert plan("cpu", 20 * GiB, fp) == CPU
    assert (CPU.max_batch_size, CPU.max_batch_tokens, CPU.decode_rows, CPU.static_cache) == (16, 8192, 64, False)
    assert plan("cuda", None, fp) == CPU  # free memory unknown: nothing to plan from


def test_an_h200_fills_with_tokens_and_decodes_many_rows_per_weight_read():
    fp = Footprint.of(LLAMA_7B, 2, 13_476_839_424)
    b = plan("cuda", 125 * GiB, fp)  # an H200 (139 GiB) after 7B weights
    assert b.static_cache
    assert b.max_batch_tokens == MAX_TOKENS  # tens of thousands of tokens per scoring forward
    assert b.decode_rows == 128  # 0.8 * 125 GiB / (0.5 MiB * 1024 tokens) = 200 -> power of two below
    assert b.max_batch_size >= 1024
    assert "125.0 GiB free" in b.planned


def test_less_memory_plans_smaller_batches_never_below_the_cpu_floor():
    fp = Footprint.of(LLAMA_7B, 2, 13_476_839_424)
    big, small, tiny = (plan("cuda", g * GiB, fp) for g in (60, 10, 1))
    assert big.decode_rows > small.decode_rows >= tiny.decode_rows == 16
    assert big.max_batch_tokens > small.max_batch_tokens >= tiny.max_batch_tokens == 8192
    assert small.max_batch_tokens == 10 * GiB * 0.8 // (fp.kv_bytes_per_token + fp.activation_bytes_per_token) // 1024 * 1024
    # grouped-query attention (8 of 32 heads keep keys and values) fits four times the rows
    gqa = Footprint.of(SimpleNamespace(**{**vars(LLAMA_7B), "num_key_value_heads": 8}), 2, 0)
    assert plan("cuda", 10 * GiB, gqa).decode_rows == 4 * small.decode_rows


def test_model_args_override_the_plan_and_say_so():
    b = with_overrides(CPU, max_batch_size=64, max_batch_tokens=None, static_cache=True)
    assert (b.max_batch_size, b.max_batch_tokens, b.static_cache) == (64, 8192, True)
    assert b.planned == "CPU defaults; max_batch_size, static_cache from --model-args"
    assert with_overrides(CPU) == CPU
    for bad in ({"max_batch_size": 0}, {"decode_rows": "many"}, {"max_batch_tokens": True}, {"static_cache": 1}):
        with pytest.raises(UserError, match=f"--model-args: {next(iter(bad))} must be"):
            with_overrides(CPU, **bad)


def test_a_bad_size_fails_before_the_model_loads(monkeypatch):
    from selfexplain.backends import hf

    monkeypatch.setattr(hf, "load_model", lambda *a, **k: pytest.fail("loaded a model"))
    with pytest.raises(UserError, match="decode_rows must be a positive whole number"):
        hf.HFBackend("embedded:smollm2-135m", decode_rows=-1)


@pytest.mark.embedded
def test_the_sizes_used_are_in_the_run_config_outside_its_hash(tmp_path, smol):
    from selfexplain import api
    from selfexplain.backends.hf import HFBackend

    be = smol
    res = api.evaluate(model="embedded:smollm2-135m", styles=["attribution"], limit=2, output_path=tmp_path,
                       backend_instance=be, max_new_tokens=4)
    cfg = json.loads((res.run_dir / "config.json").read_text())
    assert cfg["runtime"] == {"device": "cpu", "batching": {
        "max_batch_size": 8, "max_batch_tokens": 8192, "decode_rows": 64, "static_cache": False,
        "planned": "CPU defaults; max_batch_size from --model-args"}}
    # Other sizes are the same run: it resumes in the same folder with nothing to compute.
    again = api.evaluate(model="embedded:smollm2-135m", styles=["attribution"], limit=2, output_path=tmp_path,
                         backend_instance=HFBackend.from_loaded(be.model, be.tokenizer, be.identity,
                                                                max_batch_size=4),
                         max_new_tokens=4)
    assert again.run_dir == res.run_dir
    assert json.loads((res.run_dir / "config.json").read_text()) == cfg
