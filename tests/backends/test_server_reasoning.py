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
