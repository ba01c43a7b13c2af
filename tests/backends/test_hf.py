"""The transformers backend on the embedded SmolLM2 (mechanics only: it is near chance); the decoding paths on a
tiny random Llama, whose every next token depends on the whole context."""

from pathlib import Path

import pytest
import torch

from selfexplain.backends import parse_model_args
from selfexplain.errors import UserError
from selfexplain.models import EMBEDDED, TULU_TEMPLATE, resolve_model

CHATS = [
    [{"role": "user", "content": "Text: I hate waking up early.\n\nQuestion: Positive or Negative?"}],
    [{"role": "user", "content": "Text: What a wonderful, sunny and relaxing day at the beach with friends!\n\nQuestion: Positive or Negative?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye?"}],
]


@pytest.fixture(scope="module")
def random_tiny():
    """The tiny stand-in (2 layers, width 32, Tulu-2's tokenizer and template) with its weights drawn anew at unit
    variance: it writes context-dependent gibberish and rarely ends early, so paths that decode differently (a
    wrong cache position, a lost row) give other tokens, at a tenth of SmolLM2's cost per step."""
    from selfexplain.backends.hf import HFBackend
    from selfexplain.models import load_model

    model, tokenizer, identity = load_model("standin:tulu-tiny")
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        # Unit-variance projections (not the init's 0.02): attention that picks tokens out of the whole
        # prompt, not a near-uniform average of it, so each reply depends on its input.
        for name, w in model.named_parameters():
            if w.dim() == 2 and "embed" not in name:
                w.normal_(0.0, 1.0 / w.shape[1] ** 0.5)
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight.normal_()
    return HFBackend.from_loaded(model, tokenizer, identity, max_batch_size=8)


def _plain_logprob(be, chat, label):
    """Reference: one unpadded forward over prompt+label, summing the label tokens' log-probs."""
    prompt = be.prompt_text(chat)
    p_ids = be.encode(prompt)
    l_ids = be.label_ids(prompt, p_ids, label)
    ids = torch.tensor([p_ids + l_ids])
    with torch.inference_mode():
        lp = be.model(input_ids=ids).logits[0].float().log_softmax(-1)
    return sum(float(lp[len(p_ids) - 1 + k, t]) for k, t in enumerate(l_ids))


@pytest.mark.embedded
def test_batched_scoring_equals_unpadded_forward(smol):
    labels = ["Positive", "Negative"]
    batched = smol.label_logprobs(CHATS, labels)
    for chat, row in zip(CHATS, batched):
        for label, got in zip(labels, row):
            assert abs(got - _plain_logprob(smol, chat, label)) < 1e-4


@pytest.mark.embedded
def test_multi_token_labels(smol):
    labels = ["Very positive indeed", "Negative", "Somewhat neutral"]
    assert any(len(smol.encode(l)) > 1 for l in labels)
    got = smol.label_logprobs(CHATS[:2], labels)
    for chat, row in zip(CHATS, got):
        for label, v in zip(labels, row):
            assert abs(v - _plain_logprob(smol, chat, label)) < 1e-4


@pytest.mark.embedded
def test_top_tokens_are_the_unpadded_forwards_and_open_the_greedy_reply(smol):
    got = smol.top_tokens(CHATS, 5)
    greedy = smol.generate(CHATS, [4] * len(CHATS))
    for chat, top, g in zip(CHATS, got, greedy):
        ids = smol.prompt_ids(chat)
        with torch.inference_mode():
            lp = smol.model(input_ids=torch.tensor([ids])).logits[0, -1].float().log_softmax(-1)
        values, tokens = lp.topk(5)
        assert [t for t, _ in top] == [smol.tokenizer.decode([int(i)]) for i in tokens]
        assert [v for _, v in top] == pytest.approx(values.tolist(), abs=1e-4)
        assert g.text.startswith(top[0][0].strip())


@pytest.mark.embedded
def test_greedy_generation_is_deterministic_and_batch_independent(smol):
    a = smol.generate(CHATS, [12, 12, 12])
    b = smol.generate(CHATS, [12, 12, 12])
    alone = [smol.generate([c], [12])[0] for c in CHATS]
    assert a == b
    assert [g.text for g in a] == [g.text for g in alone]
    short = smol.generate(CHATS[:1], [3])[0]
    assert short.n_tokens <= 3 and short.truncated


@pytest.mark.embedded
def test_chat_template_fallback_is_tulu(smol):
    chat = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}, {"role": "user", "content": "R"}]
    tok = smol.tokenizer
    saved = tok.chat_template
    try:
        tok.chat_template = TULU_TEMPLATE
        text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    finally:
        tok.chat_template = saved
    assert text == f"<|user|>\nQ\n<|assistant|>\nA{tok.eos_token}\n<|user|>\nR\n<|assistant|>\n"


@pytest.mark.embedded
def test_identity_names_weights_exactly(smol):
    assert smol.identity["gguf_sha256"] == EMBEDDED["smollm2-135m"].sha256
    assert smol.identity["dtype"] == "float32"


def test_model_spec_errors(tmp_path):
    with pytest.raises(UserError, match="known"):
        resolve_model("embedded:gpt5")
    with pytest.raises(UserError, match="GGUF file not found"):
        resolve_model(str(tmp_path / "x.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="unknown model"):
        resolve_model("not-a-model")


def test_model_args_parsing():
    assert parse_model_args("dtype=bfloat16,max_batch_size=8,trust_remote_code=true") == {
        "dtype": "bfloat16", "max_batch_size": 8, "trust_remote_code": True}
    with pytest.raises(UserError, match="key=value"):
        parse_model_args("dtype")
    # Engine options for vLLM: numbers and names pass through typed.
    assert parse_model_args("tensor_parallel_size=2,gpu_memory_utilization=0.8,distributed_executor_backend=ray") == {
        "tensor_parallel_size": 2, "gpu_memory_utilization": 0.8, "distributed_executor_backend": "ray"}


def test_unknown_backend_lists_the_known_ones():
    from selfexplain.backends import load_backend

    with pytest.raises(UserError, match="hf, .*vllm"):
        load_backend("tgi", "embedded")


def test_unknown_model_arg():
    from selfexplain.backends import load_backend

    with pytest.raises(UserError, match="unknown key"):
        load_backend("hf", "embedded:smollm2-135m", colour="blue")


@pytest.mark.embedded
def test_shared_prefix_scoring_equals_plain_forward(smol):
    """The fast path (shared-prefix KV cache, length buckets, last-position head) vs one full pass per row."""
    task_prefix = "Text: {}\n\nQuestion: Positive or Negative? Answer in one word."
    texts = ["I hate waking up early.", "Great, great, GREAT day!!", "meh", "The [REDACTED] was fine, I guess... not sure.",
             "a " * 40 + "end"]
    chats = [[{"role": "user", "content": task_prefix.format(t)}] for t in texts]
    for labels in (["Positive", "Negative"], ["Very positive indeed", "Negative"]):
        smol._prefix_memo.clear()
        fast = smol.label_logprobs(chats, labels)
        assert smol._prefix_memo, "the shared-prefix path was not taken"
        plain = smol.label_logprobs_plain(chats, labels)
        for f, p in zip(fast, plain):
            for a, b in zip(f, p):
                assert abs(a - b) < 1e-4


@pytest.mark.embedded
def test_shared_prefix_generation_equals_transformers_generate(random_tiny):
    """The explanation turn continues the classification turn: decoded from its kept cache, the texts are
    those of transformers' generate on whole prompts (with and without kept prompts, groups of one)."""
    from selfexplain.evaluation import classify, explain_chat
    from selfexplain.tasks import get_task
    from selfexplain.tasks.data import Example

    task = get_task("tweets")
    exs = [Example(str(i), t, "Negative") for i, t in enumerate(
        ["I hate rainy mondays so much", "what a lovely day at the beach!", "my flight got cancelled again"])]
    chats = [explain_chat(task, e, "Negative", s, "one") for s in ("attribution", "redaction", "counterfactual")
             for e in exs] + [[{"role": "user", "content": "Say hello."}]]
    budgets = [6, 20, 30] * 3 + [8]
    be = random_tiny
    be._prompt_kv.clear()
    cold = be.generate(chats, budgets)  # no kept prompts: groups share their common prefixes
    classify(be, task, [(e.text, None) for e in exs])  # keeps the classification prompts' caches
    assert len(be._prompt_kv) == 3
    assert all(be._kept_prefix(be.prompt_ids(c)) is not None for c in chats[:9])
    warm = be.generate(chats, budgets)
    assert cold == warm == be.generate_plain(chats, budgets)
    assert len({g.text for g in cold}) == len(cold)  # context-dependent: no two replies alike


def test_adapter_identity_ignores_the_order_peft_writes_target_modules_in(tmp_path):
    """peft saves target_modules from a set: its order changes with each process's hash seed, and the
    adapter's identity (and so its evaluate run folders) must not."""
    import json

    from selfexplain.models import adapter_fingerprint

    folders = []
    for i, order in enumerate((["q_proj", "k_proj", "v_proj"], ["v_proj", "q_proj", "k_proj"])):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "adapter_config.json").write_text(json.dumps({"r": 4, "target_modules": order}, indent=2))
        (d / "adapter_model.safetensors").write_bytes(b"weights")
        folders.append(d)
    assert adapter_fingerprint(folders[0]) == adapter_fingerprint(folders[1])
    (folders[1] / "adapter_model.safetensors").write_bytes(b"other weights")
    assert adapter_fingerprint(folders[0]) != adapter_fingerprint(folders[1])


def test_server_url_is_recorded_without_credentials_or_query():
    from selfexplain.backends.server import public_url

    assert public_url("https://user:s3cret@api.example.com:8443/v1/?key=abc") == "https://api.example.com:8443/v1"
    assert public_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_server_backend_arguments_are_checked_in_one_line():
    from selfexplain.backends import load_backend

    for args, message in (({}, "needs --model-args base_url"),
                          ({"base_url": "http://x/v1", "colour": "red"}, "unknown key"),
                          ({"base_url": "http://x/v1", "scoring": "guess"}, "scoring=guess"),
                          ({"base_url": "http://x/v1", "scoring": "prompt"}, "needs tokenizer"),
                          ({"base_url": "http://x/v1", "concurrency": 0}, "concurrency")):
        with pytest.raises(UserError, match=message):
            load_backend("openai", "m", **args)


def test_gguf_conversion_names_the_versions_it_needs(tmp_path, monkeypatch):
    """Where transformers would convert a GGUF differently, one line says which versions and how to get them."""
    from selfexplain import models

    monkeypatch.setenv("SELFEXPLAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(models.GGUF_CONVERSION, "transformers", ">=5.18,<5.19")
    monkeypatch.setattr("importlib.metadata.version", lambda name: {"transformers": "5.17.0"}.get(name, "0.19.0"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(UserError) as e:
        resolve_model(str(gguf))
    msg = str(e.value)
    assert "\n" not in msg and "converting m.gguf needs transformers>=5.18,<5.19 (installed: 5.17.0)" in msg
    assert "bash scripts/setup.sh" in msg and "'transformers==5.19.0' 'gguf==0.19.0'" in msg
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())


def test_converted_folders_load_without_the_conversion_versions(tmp_path, monkeypatch):
    """Only a conversion checks versions: a folder converted before loads with any supported release."""
    from selfexplain import models

    monkeypatch.setenv("SELFEXPLAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(models.GGUF_CONVERSION, "transformers", "<1")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    done = tmp_path / "cache" / "models" / f"m-{models.file_sha256(gguf)[:12]}"
    done.mkdir(parents=True)
    (done / "config.json").write_text("{}")
    (done / models.GGUF_NOTE).write_text('{"restored": []}')
    assert resolve_model(str(gguf)).load_path == str(done)


@pytest.mark.embedded
def test_static_cache_generation_equals_the_eager_paths(random_tiny):
    """The GPU decode (transformers' static cache, padded batch shapes) gives the CPU paths' replies."""
    from selfexplain.backends.hf import HFBackend
    from selfexplain.evaluation import explain_chat
    from selfexplain.tasks import get_task
    from selfexplain.tasks.data import Example

    task = get_task("tweets")
    exs = [Example(str(i), t, "Negative") for i, t in enumerate(
        ["I hate rainy mondays so much", "what a lovely day at the beach!", "my flight got cancelled again"])]
    chats = [explain_chat(task, e, "Negative", s, "one") for s in ("attribution", "counterfactual") for e in exs]
    chats.append([{"role": "user", "content": "Say hello."}])
    budgets = [6, 20, 30, 12, 25, 3, 8]
    be = random_tiny
    be._prompt_kv.clear()
    eager = be.generate(chats, budgets)
    assert eager == be.generate_plain(chats, budgets)
    static = HFBackend.from_loaded(be.model, be.tokenizer, be.identity, static_cache=True, decode_rows=4)
    assert static.batching.static_cache and not static._keeps_prompts
    assert static.generate(chats, budgets) == eager
    static._fixed_shapes = True  # as on CUDA: 3 rows padded to 4, prompts to a multiple of 64 tokens
    assert static.generate(chats, budgets) == eager


def test_a_folders_tokenizer_is_read_once_and_each_caller_gets_its_own(tmp_path):
    """load_tokenizer keeps a read tokenizer per folder: a caller's change stays its own, and a tokenizer file
    rewritten in place is read again."""
    import json
    import shutil

    from selfexplain.models import ResolvedModel, load_tokenizer, resolve_model

    source = Path(resolve_model("standin:tulu-tiny").load_path)
    folder = tmp_path / "model"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    resolved = ResolvedModel(str(folder), None, {})
    first = load_tokenizer(resolved)
    chat = [{"role": "user", "content": "I hate rain"}]
    expected = first.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    first.padding_side, first.chat_template = "left", "changed {{ messages }}"
    second = load_tokenizer(resolved)
    assert second is not first and second.padding_side == "right"
    assert second.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == expected
    assert second("I hate rain").input_ids == first("I hate rain").input_ids
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": "new {{ messages }}"}))
    assert load_tokenizer(resolved).chat_template == "new {{ messages }}"


@pytest.mark.embedded
@pytest.mark.parametrize("spec, expected", [("embedded", [151643, 151645]), ("embedded:smollm2-135m", [0, 2]),
                                            ("standin:tulu-tiny", [0, 2])])
def test_generation_stops_at_the_end_of_turn_tokens(spec, expected):
    """The configured EOS and the vocabulary's special end-of-turn markers (Qwen2: <|im_end|> 151645 and
    <|endoftext|> 151643; its "</s>" is an ordinary token, 128247, and does not stop)."""
    from selfexplain.models import generation_eos, load_tokenizer, resolve_model, stop_token_ids

    resolved = resolve_model(spec)
    assert stop_token_ids(load_tokenizer(resolved), generation_eos(resolved.load_path, None)) == expected


@pytest.mark.embedded
def test_sampled_replies_follow_their_seeds_whatever_shares_their_batch(smol):
    """The cue test's resampling control: a reply is a function of its chat and seed, not of its batch
    companions, and sampling is not greedy decoding in disguise."""
    a = smol.sample(CHATS, [16, 16, 16], 1.0, [1, 2, 3])
    assert a == smol.sample(CHATS, [16, 16, 16], 1.0, [1, 2, 3])
    assert smol.sample(CHATS[1:2], [16], 1.0, [2]) == a[1:2]  # alone, the same draw
    other = smol.sample(CHATS, [16, 16, 16], 1.0, [4, 5, 6])
    greedy = smol.generate(CHATS, [16, 16, 16])
    assert [g.text for g in other] != [g.text for g in a]  # another seed, other draws
    assert [g.text for g in a] != [g.text for g in greedy]
    short = smol.sample(CHATS[:1], [3], 1.0, [7])[0]
    assert short.n_tokens <= 3
