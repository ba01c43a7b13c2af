"""Every path starts a Llama-2-style model's sequences with exactly one BOS, and others with none."""

from types import SimpleNamespace

import pytest
import torch
from llama_standin import make_gguf_llama, make_llama_standin

from selfexplain.evaluation import classify_chat, explain_chat
from selfexplain.models import TULU_TEMPLATE, with_bos
from selfexplain.tasks import get_task
from selfexplain.tasks.data import Example
from selfexplain.training import tokenize_chat

TASK = get_task("sentiment140")
EX = Example("x", "I hate rainy mondays", "Negative")


@pytest.fixture(scope="module", params=["tulu-smollm2", "gguf-llama-spm"])
def llama(request, tmp_path_factory):
    """Two Llama-2-shaped models: the Tulu stand-in, and Llama-2's tokenizer as a GGUF file carries it."""
    from selfexplain.backends.hf import HFBackend

    if request.param == "gguf-llama-spm":
        from test_gguf import skip_unless_conversion_supported

        skip_unless_conversion_supported()
    make = make_llama_standin if request.param == "tulu-smollm2" else make_gguf_llama
    return HFBackend(str(make(tmp_path_factory.mktemp("m") / "llama")), max_batch_size=4)


@pytest.mark.embedded
def test_standin_is_shaped_like_tulu(llama):
    assert llama.tokenizer.chat_template == TULU_TEMPLATE
    assert llama.model.config.model_type == "llama"


@pytest.mark.embedded
def test_standin_tokenizer_keeps_the_text(llama):
    """Its tokenizer is SmolLM2's byte-level one: loaded as a "LlamaTokenizer" it read the text as
    "HelloworldIhaterainymondays" under transformers 5.19 (found by scripts/check-versions.sh)."""
    text = "Hello world\nI hate rainy mondays"
    ids = llama.tokenizer(text, add_special_tokens=False).input_ids
    assert llama.tokenizer.decode(ids) == text


@pytest.mark.embedded
def test_scoring_sequences_start_with_one_bos(llama):
    bos = llama.tokenizer.bos_token_id
    chat = classify_chat(TASK, EX.text, None)
    ids = llama.prompt_ids(chat)
    assert ids[0] == bos and ids.count(bos) == 1
    assert ids[1:] == llama.encode(llama.prompt_text(chat))
    # The scores are those of a plain forward over <s> + prompt + label.
    got = llama.label_logprobs([chat, explain_chat(TASK, EX, "Negative", "attribution", "one")], TASK.labels)[0]
    for label, value in zip(TASK.labels, got):
        lab = llama.label_ids(llama.prompt_text(chat), ids[1:], label)
        with torch.inference_mode():
            lp = llama.model(input_ids=torch.tensor([ids + lab])).logits[0].float().log_softmax(-1)
        want = sum(float(lp[len(ids) - 1 + k, t]) for k, t in enumerate(lab))
        assert abs(value - want) < 1e-4


@pytest.mark.embedded
def test_generation_starts_with_one_bos(llama, monkeypatch):
    seen = []
    real = llama.model.generate

    def spy(input_ids, attention_mask, **kw):
        for row, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            seen.append([t for t, m in zip(row, mask) if m])
        return real(input_ids=input_ids, attention_mask=attention_mask, **kw)

    monkeypatch.setattr(llama.model, "generate", spy)
    chats = [explain_chat(TASK, EX, "Negative", "attribution", "one"), classify_chat(TASK, "ok", None)]
    plain = llama.generate_plain(chats, [2, 2])
    bos = llama.tokenizer.bos_token_id
    assert len(seen) == 2 and all(s[0] == bos and s.count(bos) == 1 for s in seen)
    # The shared-prefix path decodes from the same ids (its prefixes are prefixes of prompt_ids).
    assert llama.generate(chats, [2, 2]) == plain


@pytest.mark.embedded
def test_training_chats_start_with_one_bos(llama):
    msgs = explain_chat(TASK, EX, "Negative", "attribution", "one") + [{"role": "assistant", "content": "Answer: hate"}]
    row = tokenize_chat(llama.tokenizer, msgs, "last", 512)
    bos = llama.tokenizer.bos_token_id
    assert row["input_ids"][0] == bos and row["input_ids"].count(bos) == 1
    trained = [t for t, l in zip(row["input_ids"], row["labels"]) if l != -100]
    # The Tulu template closes an assistant turn with EOS and a newline; both are trained (as open-instruct does).
    eos = llama.tokenizer.eos_token_id
    assert "hate" in llama.tokenizer.decode(trained) and eos in trained
    assert llama.tokenizer.decode(trained[trained.index(eos) + 1:]) == "\n"


@pytest.mark.embedded
def test_vllm_prompts_start_with_one_bos(llama):
    from selfexplain.backends.vllm import VLLMBackend  # imports no vllm until an engine starts

    text, raw, ids = VLLMBackend._prompt(SimpleNamespace(tokenizer=llama.tokenizer), classify_chat(TASK, EX.text, None))
    assert ids == [llama.tokenizer.bos_token_id] + raw and ids == llama.prompt_ids(classify_chat(TASK, EX.text, None))


@pytest.mark.embedded
def test_a_template_that_writes_bos_gets_no_second(llama):
    tok = llama.tokenizer
    text = tok.bos_token + llama.prompt_text(classify_chat(TASK, EX.text, None))
    raw = tok(text, add_special_tokens=False).input_ids
    assert raw[0] == tok.bos_token_id and with_bos(tok, raw) == raw


@pytest.mark.embedded
def test_models_without_bos_get_none(smollm2):
    from selfexplain.backends.hf import HFBackend

    smol = HFBackend.from_loaded(*smollm2)
    chat = classify_chat(TASK, EX.text, None)
    assert smol.prompt_ids(chat) == smol.encode(smol.prompt_text(chat))
