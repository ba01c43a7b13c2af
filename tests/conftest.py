import gc
import math
import os

import pytest

from selfexplain.backends import Backend, Generation

# Tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="module")
def _freeze_survivors():
    """After each test file, collect its garbage and freeze what survives (imported libraries; vLLM's import
    alone leaves ~0.7 M objects).  A study releases each model with a full gc.collect, whose cost grows with
    every live object: late in the suite, 13 of 15 py-spy samples of the paper smoke study were in that
    collect.  Measured once each, with only the vLLM tests before it: 164 s unfrozen, 149 s frozen; the
    effect over the whole suite is not measured yet.  Frozen objects are never collected, so the collect
    comes first."""
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M as ``load_model`` gives it, (model, tokenizer, identity), loaded once per test session.

    Tests wrap it in ``HFBackend.from_loaded`` to get caches of their own, and never change its weights
    (training loads its own copy)."""
    from selfexplain.models import load_model

    return load_model("embedded:smollm2-135m")


@pytest.fixture(scope="session")
def default_model():
    """The embedded default model (Qwen2.5-Coder-0.5B), loaded once per session, as ``smollm2``."""
    from selfexplain.models import load_model

    return load_model("embedded")


@pytest.fixture(scope="session")
def cpu_small_smoke(tmp_path_factory):
    """``selfexplain reproduce --preset cpu-small --smoke --no-report``, run once per session by the real CLI in
    a process of its own: the uninterrupted study that the kill test compares against, and the study whose
    copy the adapter-less clone test resumes.  Read only: tests copy it before changing anything."""
    import fault_runner

    out = tmp_path_factory.mktemp("cpu-small-smoke")
    r = fault_runner.run(["reproduce", "--preset", "cpu-small", "--smoke", "--no-report", "--output-path", str(out)])
    assert r.returncode == 0, r.stderr
    return out / "cpu-small-smoke"


class KeywordBackend(Backend):
    """A deterministic stand-in model: 'hate'/'bad' mean Negative, else Positive.

    Replies to explanation requests with canned answers per style, and logs every
    chat it sees so tests can check the conversation structure.
    """

    identity = {"kind": "test", "name": "keyword"}

    def __init__(self, replies=None, top=None):
        self.replies = replies or {}
        self.top = top or [("Negative", -0.5), ("hate", -1.0), ("Lov", -1.5), ("love", -2.0)]
        self.scored: list = []
        self.generated: list = []
        self.ranked: list = []

    def label_logprobs(self, chats, labels):
        self.scored.extend(chats)
        out = []
        for chat in chats:
            text = chat[-1]["content"].lower()
            neg = "hate" in text or "bad" in text
            p_neg = 0.9 if neg else 0.2
            probs = {"Negative": p_neg, "Positive": 1 - p_neg}
            out.append([math.log(probs.get(l, 1e-6)) for l in labels])
        return out

    def generate(self, chats, max_new_tokens):
        self.generated.extend(chats)
        res = []
        for chat in chats:
            q = chat[-1]["content"]
            key = next((k for k in self.replies if k in q), None)
            res.append(Generation(self.replies.get(key, "Answer: nothing"), 3, False))
        return res

    def top_tokens(self, chats, k):
        self.ranked.extend(chats)
        return [self.top[:k] for _ in chats]


@pytest.fixture
def keyword_backend():
    return KeywordBackend(
        replies={
            "List the single": "Answer: hate",
            "Redact one word": "Answer: I [REDACTED] mondays",
            "Edit the text": "Answer: I love mondays",
        }
    )
