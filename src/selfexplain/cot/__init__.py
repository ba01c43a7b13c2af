"""Chain-of-thought faithfulness tests beside self-consistency, with the same models, backends and statistics.

* :mod:`.prompts`: the reasoning question, the forced answer after a (changed) reasoning, the thinking block;
* :mod:`.cues`: biasing cues (a person's suggestion, answer-always-X few-shot, metadata) and their detectors;
* :mod:`.perturb`: early answering, filler, and the helper model's mistake and paraphrase;
* :mod:`.evaluate`: one chunk of samples through a test, records and summaries.

Every answer is *forced and scored*: after the reasoning (whole, cut or replaced) the chat asks for the final
answer and the labels are scored as its opening (:meth:`~selfexplain.backends.Backend.label_logprobs`), greedy as
the paper's classification.  So a cut or replaced reasoning always yields an answer, and each test compares the
same kind of answer.
"""

from .cues import CUES, Cue, cue_names, get_cue
from .perturb import FRACTIONS, aoc

__all__ = ["CUES", "FRACTIONS", "Cue", "aoc", "cue_names", "get_cue"]
