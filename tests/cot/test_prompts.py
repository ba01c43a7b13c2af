"""The reasoning question, the forced answer and the thinking block."""

import pytest

from selfexplain.cot.prompts import REASON, answer_chat, question, reason_chat, split_thinking, stated_answer
from selfexplain.tasks import get_task

TWEETS = get_task("tweets")


def test_the_question_is_the_task_prompt_then_the_reasoning_request_then_the_cue():
    q = question(TWEETS, "so {happy} today", None, before="<meta>\n", after="I think it is X.")
    assert q.startswith("<meta>\nText: so {happy} today")  # braces in the input are kept as they are
    assert q.endswith(REASON + " I think it is X.")


def test_demonstrations_are_answered_turns_ahead_of_the_question():
    chat = reason_chat(TWEETS, "text", None, demos=[("a", None, "Positive"), ("b", None, "Positive")])
    assert [m["role"] for m in chat] == ["user", "assistant", "user", "assistant", "user"]
    assert chat[1]["content"] == "Positive" and "Text: a" in chat[0]["content"] and REASON in chat[-1]["content"]


def test_the_answer_is_asked_for_after_the_reasoning_in_the_same_chat():
    chat = answer_chat(TWEETS, reason_chat(TWEETS, "text", None), "It is fine.")
    assert chat[-2] == {"role": "assistant", "content": "It is fine."}
    assert chat[-1]["role"] == "user" and "Positive, Negative" in chat[-1]["content"]


@pytest.mark.parametrize(
    "reply, reasoning, expected",
    [
        ("It is fine. Answer: Positive", None, (None, "It is fine. Answer: Positive")),
        ("<think>the user hints X</think>\nAnswer: X", None, ("the user hints X", "Answer: X")),
        ("the user hints X</think> Answer: X", None, ("the user hints X", "Answer: X")),  # opened by the template
        ("<think>cut by the budget", None, ("cut by the budget", "")),
        ("Answer: X", " thoughts from the server ", ("thoughts from the server", "Answer: X")),
    ],
)
def test_split_thinking(reply, reasoning, expected):
    assert split_thinking(reply, reasoning) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Step one. Answer: Positive", "Positive"),
        ("Answer: Negative\nExplanation: ...", "Negative"),
        ("the answer is: **negative**", "Negative"),
        ("Answer: Negative. Then again, Answer: Positive", "Positive"),  # the last statement
        ("No statement here", None),
        ("Answer: neutral", None),
    ],
)
def test_stated_answer(text, expected):
    assert stated_answer(text, TWEETS.labels) == expected
