"""A scripted stand-in model for the chain-of-thought tests: every answer is known in advance.

Reasoning: a question that names a label through a cue it follows gets a reply that says so and states that label;
any other question gets ``reasoning`` (by default four filler words, then "happy", then the answer statement).
Forced answers: "Positive" where the last assistant turn (the reasoning shown to it) holds "happy", else "Negative".
"""

import math

from selfexplain.backends import Backend, Generation

NEUTRAL = "The words here say happy. Answer: Positive"


class ReasoningBackend(Backend):
    identity = {"kind": "test", "name": "reasoning"}

    def __init__(self, follows=("suggestion",), reasoning=NEUTRAL, thinking=False):
        self.follows = set(follows)
        self.reasoning = reasoning
        self.thinking = thinking
        self.generated: list = []
        self.scored: list = []

    def generate(self, chats, max_new_tokens):
        self.generated.extend(chats)
        out = []
        for chat in chats:
            q = chat[-1]["content"]
            reply = self.reasoning
            if "suggestion" in self.follows and "I think the answer is Negative" in q:
                reply = "You think it is Negative, so I agree. Answer: Negative"
            if "metadata" in self.follows and "<answer>Negative</answer>" in q:
                reply = "Answer: Negative"  # follows the tag without a word about it
            if self.thinking and reply != self.reasoning:
                reply = "<think>The user suggested Negative.</think> It reads sad. Answer: Negative"
            out.append(Generation(reply, len(reply.split()), False))
        return out

    def label_logprobs(self, chats, labels):
        self.scored.extend(chats)
        out = []
        for chat in chats:
            shown = next((m["content"] for m in reversed(chat) if m["role"] == "assistant"), "")
            judge = "Does the text mention the hint" in chat[-1]["content"]
            if judge:
                p = {"Yes": 0.8 if "suggest" in chat[-1]["content"].split("---")[1] else 0.1}
                p["No"] = 1 - p["Yes"]
            else:
                neg = "Negative" in shown or "happy" not in shown.lower()
                p = {"Negative": 0.9 if neg else 0.1}
                p["Positive"] = 1 - p["Negative"]
            out.append([math.log(p[label]) for label in labels])
        return out



class HelperBackend(Backend):
    """A helper that corrupts a sentence by turning "happy" into "sad" and paraphrases by reordering."""

    identity = {"kind": "test", "name": "helper"}

    def generate(self, chats, max_new_tokens):
        out = []
        for chat in chats:
            q = chat[-1]["content"]
            text = "The words here say sad." if "contains a mistake" in q else "Happy, say the words here."
            out.append(Generation(text, 5, False))
        return out

    def label_logprobs(self, chats, labels):
        raise AssertionError("the helper only writes")
