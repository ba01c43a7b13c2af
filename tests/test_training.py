"""Training: loss masks token by token, data mixing, and real LoRA runs (short; kill and resume: test_faults.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from locations import FIXTURES
from selfexplain.errors import UserError
from selfexplain.training import IGNORE, mix, prediction_chats, read_chats, tokenize_chat

CHAT = [
    {"role": "user", "content": "Text: I hate mondays\n\nQuestion: sentiment?"},
    {"role": "assistant", "content": "Negative"},
    {"role": "user", "content": "Question: List the single most important word."},
    {"role": "assistant", "content": "Answer: hate"},
]


@pytest.fixture(scope="module")
def tokenizer(smollm2):
    return smollm2[1]


def _trained_text(tok, enc):
    return tok.decode([t for t, l in zip(enc["input_ids"], enc["labels"]) if l != IGNORE])


@pytest.mark.embedded
def test_loss_only_on_the_explanation(tokenizer):
    enc = tokenize_chat(tokenizer, CHAT, "last", 512)
    assert len(enc["input_ids"]) == len(enc["labels"]) == len(enc["attention_mask"])
    trained = [i for i, l in enumerate(enc["labels"]) if l != IGNORE]
    # One contiguous span at the very end: the explanation and its end-of-turn marker.
    assert trained == list(range(trained[0], len(enc["labels"]) - (len(enc["labels"]) - 1 - trained[-1])))
    assert _trained_text(tokenizer, enc).startswith("Answer: hate<|im_end|>")
    for i, (tok_id, label) in enumerate(zip(enc["input_ids"], enc["labels"])):
        assert label in (IGNORE, tok_id)
    # The model's own prediction ("Negative") and every user turn are context only.
    assert "Negative" not in _trained_text(tokenizer, enc)
    assert "mondays" not in _trained_text(tokenizer, enc)


@pytest.mark.embedded
def test_loss_on_every_assistant_turn_for_instruction_chats(tokenizer):
    enc = tokenize_chat(tokenizer, CHAT, "assistant", 512)
    text = _trained_text(tokenizer, enc)
    assert "Negative" in text and "Answer: hate" in text and "mondays" not in text and "Question" not in text


@pytest.mark.embedded
def test_truncation_and_bad_chat(tokenizer):
    assert len(tokenize_chat(tokenizer, CHAT, "last", 8)["input_ids"]) == 8
    with pytest.raises(UserError, match="must end with an assistant turn"):
        tokenize_chat(tokenizer, CHAT[:3], "last", 512)


def test_mix_ratio_and_predictions_baseline():
    task = [{"messages": CHAT, "gold": "Negative"}] * 10
    replay = read_chats(FIXTURES / "replay.jsonl")
    rows = mix(task, replay, 0.2, seed=0)
    assert len(rows) == 12 and sum(r["train_on"] == "assistant" for r in rows) == 2
    with pytest.raises(UserError, match="needs 20 instruction chats"):
        mix(task * 2, replay, 1.0, seed=0)
    base = prediction_chats(task)
    assert base[0]["messages"] == [CHAT[0], {"role": "assistant", "content": "Negative"}]


def test_read_chats_errors(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"messages": [{"role": "robot", "content": "x"}]}\n')
    with pytest.raises(UserError, match="line 1: field 'messages'"):
        read_chats(f)
    with pytest.raises(UserError, match="file not found"):
        read_chats(tmp_path / "none.jsonl")


def _train_file(tmp_path, n=8):
    rows = []
    for i in range(n):
        neg = i % 2
        chat = [dict(m) for m in CHAT]
        chat[0]["content"] = f"Text: I {'hate' if neg else 'love'} day {i}\n\nQuestion: sentiment?"
        chat[1]["content"] = "Negative" if neg else "Positive"
        chat[3]["content"] = f"Answer: {'hate' if neg else 'love'}"
        rows.append({"messages": chat, "gold": chat[1]["content"]})
    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


SMALL = ["--lora-r", "8", "--lora-alpha", "16", "--batch-size", "2", "--max-length", "96", "--mix", "0.25",
         "--replay", str(FIXTURES / "replay.jsonl")]


@pytest.mark.embedded
@pytest.mark.slow
def test_short_real_training_lowers_loss_and_adapter_evaluates(tmp_path):
    """A real model (SmolLM2: the mechanics are the default model's, at a quarter of its cost; GRPO trains the
    default model in test_rl.py), a few steps on a repeated tiny set: the loss falls; evaluate loads the adapter."""
    from selfexplain import api
    from selfexplain.training import LoraSettings, TrainSettings

    data = _train_file(tmp_path)
    settings = TrainSettings(batch_size=4, max_steps=8, learning_rate=1e-3, max_length=96, save_steps=100,
                             lora=LoraSettings(r=8, alpha=16))
    res = api.train([str(data)], model="embedded:smollm2-135m", mix_ratio=0.25, output_path=tmp_path,
                    settings=settings, replay=str(FIXTURES / "replay.jsonl"))
    losses = res.summary["losses"]
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < 0.7 * sum(losses[:2]) / 2, losses
    assert (res.adapter / "adapter_model.safetensors").exists()
    ev = api.evaluate(model="embedded:smollm2-135m", model_args={"adapter": str(res.adapter)}, limit=2, chunk_size=2,
                      styles=["attribution"], output_path=tmp_path)
    cfg = json.loads((ev.run_dir / "config.json").read_text())
    assert len(cfg["model"]["adapter"]) == 64  # the adapter's content hash is part of the run identity


@pytest.mark.embedded
@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(tmp_path):
    data = _train_file(tmp_path)
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [str(accelerate), "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "-m", "selfexplain.cli", "train", "--data", str(data),
           "--model", "standin:tulu-tiny", "--output-path", str(tmp_path), *SMALL, "--max-steps", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(next(tmp_path.glob("train-*/train_summary.json")).read_text())
    assert summary["steps"] == 2
    assert next(tmp_path.glob("train-*/adapter/adapter_model.safetensors"))


def test_evaluation_only_task_cannot_be_trained_on(tmp_path):
    from selfexplain import api

    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"messages": CHAT, "task": "vitaminc"}) + "\n")
    with pytest.raises(UserError, match="vitaminc is not allowed"):
        api.train([str(f)], model="embedded:smollm2-135m", output_path=tmp_path)


def test_training_curves_reach_tensorboard(tmp_path):
    """--report-to tensorboard: the loss of every step in RUN/tensorboard, read back with TensorBoard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from selfexplain import api
    from selfexplain.training import LoraSettings, TrainSettings

    settings = TrainSettings(batch_size=4, max_steps=3, save_steps=10, lora=LoraSettings(r=4))
    res = api.train([str(_train_file(tmp_path))], model="standin:tulu-tiny", mix_ratio=0, output_path=tmp_path,
                    settings=settings, report_to="tensorboard")
    events = EventAccumulator(str(res.run_dir / "tensorboard"))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss")]
    assert losses == pytest.approx(res.summary["losses"], rel=1e-5) and len(losses) == 3
    # Not part of the run's identity: the same training without a logger is the same run, already done.
    again = api.train([str(_train_file(tmp_path))], model="standin:tulu-tiny", mix_ratio=0, output_path=tmp_path,
                      settings=settings)
    assert again.run_dir == res.run_dir and again.summary["cached"]


@pytest.mark.parametrize("report_to,message", [("comet", "use one of none, tensorboard, wandb"),
                                               ("wandb", "needs the wandb package: pip install wandb")])
def test_unknown_or_missing_loggers_are_one_line_before_any_model_loads(tmp_path, report_to, message):
    import importlib.util

    from selfexplain import api

    if report_to == "wandb" and importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    with pytest.raises(UserError, match=message):
        api.train([str(_train_file(tmp_path))], model="no/such-model", output_path=tmp_path, report_to=report_to)
