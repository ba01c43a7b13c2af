"""A thinking model behind a server: the reasoning field that vLLM's reasoning parsers return beside the content
(``reasoning_content``; ``reasoning`` in newer releases) reaches the generation, so the cue test can look for the
cue in the thinking and in the answer apart.  The client is a stand-in: what is under test is the reading of its
reply."""

from types import SimpleNamespace

import pytest

from selfexplain.backends.server import ServerBackend
from selfexplain.cot.prompts import split_thinking


def _backend(message):
    reply = SimpleNamespace(
        choices=[SimpleNamespace(message=message, finish_reason="stop")], usage=SimpleNamespace(completion_tokens=9)
    )
    client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=lambda **kw: reply)))
    be = object.__new__(ServerBackend)
    be.mode, be.client, be.served, be.seed = "first-token", client, "m", 0
    return be


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_the_servers_reasoning_field_is_kept_apart_from_the_answer(field):
    message = SimpleNamespace(content="Answer: Negative", **{field: "The user suggested Negative."})
    g = _backend(message)._generate_one([{"role": "user", "content": "q"}], 32)
    assert (g.text, g.reasoning, g.n_tokens) == ("Answer: Negative", "The user suggested Negative.", 8)
    assert split_thinking(g.text, g.reasoning) == ("The user suggested Negative.", "Answer: Negative")


def test_a_server_without_a_reasoning_field_gives_none():
    g = _backend(SimpleNamespace(content="<think>hm</think> Answer: X"))._generate_one([], 8)
    assert g.reasoning is None and split_thinking(g.text, g.reasoning) == ("hm", "Answer: X")


def test_a_sampled_reply_sends_its_temperature_and_its_own_seed():
    sent = []
    reply = SimpleNamespace(
        choices=[SimpleNamespace(message=SimpleNamespace(content="Answer: X"), finish_reason="length")], usage=None
    )
    create = lambda **kw: sent.append(kw) or reply  # noqa: E731
    be = object.__new__(ServerBackend)
    be.mode, be.served, be.seed, be.concurrency = "first-token", "m", 0, 1
    be.client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    out = be.sample([[{"role": "user", "content": "q"}]] * 2, [5, 6], 0.7, [11, 12])
    assert [g.truncated for g in out] == [True, True]
    assert [(kw["temperature"], kw["seed"], kw["max_tokens"]) for kw in sent] == [(0.7, 11, 5), (0.7, 12, 6)]
    be.generate([[{"role": "user", "content": "q"}]], [4])
    assert (sent[-1]["temperature"], sent[-1]["seed"]) == (0, 0)  # greedy keeps the backend's own seed
