"""GRPO and DPO on the faithfulness check: pairing, tokenisation as the evaluator's, rewards recomputed, real steps."""

import json

import pytest

from locations import FIXTURES
from selfexplain.errors import UserError
from selfexplain.rewards import Judgement
from selfexplain.rl import RLSettings, pair_rows, preference_pairs
from selfexplain.training import LoraSettings, TrainSettings, tokenize_chat

pytest.importorskip("trl", reason="GRPO and DPO need TRL (pip install 'selfexplain[rl]')")



def _j(valid, faithful=None, reward=None):
    reward = reward if reward is not None else (-1.0 if not valid else 1.0 if faithful else 0.0)
    return Judgement(valid, None if valid else "r", "x" if valid else None, "Positive", "Negative" if faithful else
                     "Positive", faithful if valid else None, 0.0 if valid else None, reward)


def test_pairs_take_a_valid_faithful_and_a_valid_unfaithful_explanation():
    judged = [[_j(False), _j(True, False), _j(True, True), _j(True, True)],  # first faithful, the one unfaithful
              [_j(True, True), _j(False), _j(False)],  # no valid unfaithful one: no pair
              [_j(True, False, 0.1), _j(True, True, 1.2), _j(True, True, 1.5), _j(True, False, -0.3)]]  # graded
    texts = [["a", "b", "c", "d"], ["e", "f", "g"], ["h", "i", "j", "k"]]
    assert preference_pairs(judged, texts) == [(0, "c", "b"), None, (2, "j", "k")]


def test_reward_pairs_take_the_highest_reward_over_the_lowest():
    judged = [[_j(False), _j(True, False), _j(False), _j(True, False)],  # no faithful one: valid over invalid
              [_j(True, False), _j(True, False)],  # equal rewards: no pair
              [_j(True, False, 0.1), _j(True, True, 1.2), _j(True, False, -0.3)],  # graded: top over bottom
              [_j(True, False, 0.3), _j(True, False, 0.1)],  # 0.2 apart: under the margin
              [_j(True, True), _j(False)]]  # the same text twice: nothing to prefer
    texts = [["a", "b", "c", "d"], ["e", "f"], ["h", "i", "k"], ["l", "m"], ["n", "n"]]
    assert preference_pairs(judged, texts, "reward", 0.5) == [(0, "b", "a"), None, (2, "i", "k"), None, None]
    assert preference_pairs(judged, texts, "reward", 0.1)[3] == (3, "l", "m")
    # The binary rule finds only the third input's pair.
    assert preference_pairs(judged, texts) == [None, None, (2, "i", "k"), None, None]
    with pytest.raises(UserError, match="--dpo-pairs: unknown rule 'best'"):
        RLSettings(pairs="best").check("dpo", TrainSettings())
    assert "pairs" not in RLSettings(pairs="reward").sampling()  # re-pairing samples nothing anew


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tulu-2's shape: a Llama-2 tokenizer that adds BOS, and the Tulu chat template."""
    from selfexplain.backends.hf import HFBackend
    from selfexplain.models import load_model

    return HFBackend.from_loaded(*load_model("standin:tulu-tiny"))


def test_dpo_pairs_are_tokenised_as_sft_trains_a_reply(tiny):
    chat = [{"role": "user", "content": "Text: I hate rain\n\nQuestion: sentiment?"},
            {"role": "assistant", "content": "Negative"}, {"role": "user", "content": "List the word."}]
    row = pair_rows(tiny.tokenizer, [chat], [(0, "Answer: hate", "Answer: rain")], 512)[0]
    assert row["prompt_ids"] == tiny.prompt_ids(chat)  # what the backends score and generate from, BOS included
    assert row["prompt_ids"][0] == tiny.tokenizer.bos_token_id
    sft = tokenize_chat(tiny.tokenizer, chat + [{"role": "assistant", "content": "Answer: hate"}], "last", 512)
    trained = [t for t, label in zip(sft["input_ids"], sft["labels"]) if label != -100]
    assert row["chosen_ids"] == trained  # the same reply tokens SFT puts its loss on
    assert pair_rows(tiny.tokenizer, [chat], [(0, "Answer: hate", "Answer: rain")], 10) == []  # too long: dropped


@pytest.mark.slow
def test_grpo_prompts_are_the_evaluators_token_for_token(tmp_path, monkeypatch):
    """TRL renders conversational prompts itself (no BOS for Llama-2's template); GRPO here must not."""
    import trl

    from selfexplain import api
    from selfexplain.backends.hf import HFBackend
    from selfexplain.evaluation import classify, explain_chat
    from selfexplain.models import load_model
    from selfexplain.tasks import get_task

    seen = []
    original = trl.GRPOTrainer._generate_single_turn

    def spy(self, prompt_ids, *args, **kwargs):
        seen.extend(list(p) for p in prompt_ids)
        return original(self, prompt_ids, *args, **kwargs)

    monkeypatch.setattr(trl.GRPOTrainer, "_generate_single_turn", spy)
    settings = TrainSettings(batch_size=4, max_steps=1, save_steps=1, lora=LoraSettings(r=4))
    rl = RLSettings(num_generations=2, max_completion_length=4)
    res = api.train_rl("grpo", task="sentiment140", model="standin:tulu-tiny", limit=4,
                       data=str(FIXTURES / "sentiment140.csv"), output_path=tmp_path, settings=settings, rl=rl)
    be = HFBackend.from_loaded(*load_model("standin:tulu-tiny"))
    spec = get_task("sentiment140")
    examples = api.sample_examples(spec, 4, 0, str(FIXTURES / "sentiment140.csv"), False, "train")
    preds = classify(be, spec, [(e.text, e.context) for e in examples])
    expected = [be.prompt_ids(explain_chat(spec, e, p.label, "attribution", "one")) for e, p in zip(examples, preds)]
    assert seen and all(s in expected for s in seen), (seen[0][:8], expected[0][:8])
    logged = [json.loads(x) for x in (res.run_dir / "rewards.jsonl").read_text().splitlines()]
    assert len(logged) == 4 and {x["step"] for x in logged} == {0}  # 2 prompts x 2 explanations, one step
    assert json.loads((res.run_dir / "config.json").read_text())["rl"]["num_generations"] == 2


@pytest.mark.embedded
@pytest.mark.slow
def test_grpo_and_dpo_on_real_generations(tmp_path, default_model):
    """The default model samples real explanations (SmolLM2's samples are all invalid): GRPO's first-step
    rewards are what the evaluator's check gives for those texts with the untrained model; the steps change
    the adapter; DPO's samples (four per input) are judged as the evaluator judges them."""
    import torch
    from safetensors.torch import load_file

    from selfexplain import api
    from selfexplain.backends.hf import HFBackend
    from selfexplain.rewards import Item, judge
    from selfexplain.tasks import get_task

    model, small = "embedded", LoraSettings(r=4)
    settings = TrainSettings(batch_size=2, max_steps=2, save_steps=10, learning_rate=5e-4, lora=small)
    rl = RLSettings(num_generations=2, max_completion_length=8, temperature=0.7, samples=8)
    res = api.train_rl("grpo", task="tweets", model=model, limit=6, output_path=tmp_path, settings=settings, rl=rl)
    logged = [json.loads(x) for x in (res.run_dir / "rewards.jsonl").read_text().splitlines()]
    first = [x for x in logged if x["step"] == 0]
    spec = get_task("tweets")
    examples = {e.id: e for e in api.sample_examples(spec, 6, 0, None, False, "train")}
    be = HFBackend.from_loaded(*default_model)  # the untrained model, as GRPO's first step saw it
    again = judge(be, spec, [Item(examples[x["sample_id"]], "attribution", "one", x["text"]) for x in first])
    assert [j.reward for j in again] == [x["reward"] for x in first]  # LoRA starts at B = 0: the untrained model
    assert len({x["reward"] for x in logged}) > 1, "no reward variance: nothing to learn from"
    weights = load_file(str(res.adapter / "adapter_model.safetensors"))
    assert any(torch.count_nonzero(v) for k, v in weights.items() if "lora_B" in k)  # B started at 0
    assert len(res.summary["curves"]["reward"]) == 2

    # DPO's sampling on real generations: every sample judged as the evaluator judges it, from per-input seeds.
    # Pairs are rare for this untrained model (valid faithful explanations are ~3% of its one-word attributions,
    # and an input's valid samples tend to agree), so whether 2 inputs yield one is not the point here:
    # test_dpo_steps_change_the_adapter trains on pairs.
    dpo_settings = TrainSettings(batch_size=1, max_steps=2, save_steps=10, lora=small)
    rl = RLSettings(max_completion_length=8, temperature=0.5, samples=4)
    try:
        dpo = api.train_rl("dpo", task="tweets", model=model, limit=2, output_path=tmp_path, settings=dpo_settings,
                           rl=rl)
        assert dpo.summary["pairs"] >= 1 and dpo.summary["steps"] == 2
    except UserError as e:
        assert "no input had both a valid faithful and a valid unfaithful explanation among 4 samples" in str(e)
    samples = [json.loads(x) for f in tmp_path.glob("train-dpo-*/samples-*/records.jsonl")
               for x in f.read_text().splitlines()]
    assert len(samples) == 2 and all(len(r["texts"]) == 4 for r in samples)
    dpo_examples = {e.id: e for e in api.sample_examples(spec, 2, 0, None, False, "train")}
    for r in samples:
        again = judge(be, spec, [Item(dpo_examples[r["sample_id"]], "attribution", "one", t) for t in r["texts"]])
        for j, stored in zip(again, r["judged"]):  # the shift is scored in another batch: equal to rounding
            assert {**j.as_dict(), "shift": None} == {**stored, "shift": None}
            assert j.shift == pytest.approx(stored["shift"], abs=1e-5) if j.shift is not None else stored["shift"] is None


def test_dpo_steps_change_the_adapter(tmp_path, tiny):
    """DPO on pairs, tokenised as the evaluator's chats: after the warm-up step the LoRA B matrices move."""
    import torch
    from safetensors.torch import load_file

    from selfexplain.rl import dpo_train

    chats = [[{"role": "user", "content": f"Text: I {w} rain\n\nQuestion: sentiment?"},
              {"role": "assistant", "content": "Negative"}, {"role": "user", "content": "List the word."}]
             for w in ("hate", "loathe")]
    rows = pair_rows(tiny.tokenizer, chats, [(0, "Answer: hate", "Answer: rain"), (1, "Answer: loathe", "Answer: I")],
                     512)
    settings = TrainSettings(batch_size=1, max_steps=2, save_steps=10, learning_rate=1e-2, lora=LoraSettings(r=4))
    summary = dpo_train(tiny.model, tiny.tokenizer, rows, tmp_path, settings, RLSettings(), {"pairs": 2})
    weights = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert any(torch.count_nonzero(v) for k, v in weights.items() if "lora_B" in k)
    assert summary["steps"] == 2 and summary["pairs"] == 2 and "rewards/margins" in summary["curves"]


@pytest.mark.slow
def test_a_retrained_or_resumed_grpo_logs_each_step_once(tmp_path):
    """Retrained in a folder that keeps the reward log (a committed study folder holds no weights), or resumed
    from a checkpoint after a kill, GRPO logs every step's rewards once, as an unbroken run logs them."""
    import shutil

    from selfexplain import api

    settings = TrainSettings(batch_size=4, max_steps=2, save_steps=1, lora=LoraSettings(r=4))
    rl = RLSettings(num_generations=2, max_completion_length=4)
    args = dict(task="sentiment140", model="standin:tulu-tiny", limit=4, data=str(FIXTURES / "sentiment140.csv"),
                output_path=tmp_path, settings=settings, rl=rl)  # fmt: skip
    res = api.train_rl("grpo", **args)
    log = res.run_dir / "rewards.jsonl"
    unbroken = log.read_text()
    assert sorted({json.loads(x)["step"] for x in unbroken.splitlines()}) == [0, 1]

    # killed after step 1's checkpoint, before the adapter: step 1 runs again
    shutil.rmtree(res.run_dir / "adapter")
    shutil.rmtree(res.run_dir / "checkpoints" / "checkpoint-2")
    (res.run_dir / "train_summary.json").unlink()
    assert api.train_rl("grpo", **args).summary["resumed_from"].endswith("checkpoint-1")
    assert log.read_text() == unbroken

    # weights gone, the log kept: trained again from the start
    shutil.rmtree(res.run_dir / "adapter")
    shutil.rmtree(res.run_dir / "checkpoints")
    (res.run_dir / "train_summary.json").unlink()
    assert api.train_rl("grpo", **args).summary["resumed_from"] is None
    assert log.read_text() == unbroken
