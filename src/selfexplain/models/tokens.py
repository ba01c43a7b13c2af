"""Prompt and label tokens, shared by every backend and by training: chat rendering, BOS handling, stop
tokens, and label scoring as sums of next-token log-probabilities.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

# Tulu-2's format, for models whose tokenizer has no chat template.


# End-of-turn markers of common chat formats; generation stops at any the vocabulary has as a special token.
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>", "<|endoftext|>")


def generation_eos(path: str, revision: str | None) -> int | list[int] | None:
    """The end-of-sequence ids of the model's generation config, as the transformers backend uses."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path, revision=revision).eos_token_id
    except OSError:  # no generation_config.json
        return None


def stop_token_ids(tokenizer: Any, config_eos: int | list[int] | None) -> list[int]:
    eos_ids = set(config_eos if isinstance(config_eos, list) else [config_eos] if config_eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    # Looked up one by one: get_vocab() builds the whole vocabulary as a dict (0.03 s for 49k tokens, per load).
    special = set(tokenizer.all_special_tokens)
    for token in _END_OF_TURN:
        if token in special and tokenizer.convert_ids_to_tokens(i := tokenizer.convert_tokens_to_ids(token)) == token:
            eos_ids.add(i)
    return sorted(eos_ids)


def wants_bos(tokenizer: Any) -> bool:
    """Whether sequences of this model start with its BOS token (Llama-2 / Tulu-2: yes; Qwen: no).

    Asked of the tokenizer itself: does encoding with special tokens put the BOS
    first?  (transformers 5 builds that from ``tokenizer.json``'s post-processor;
    the ``add_bos_token`` attribute does not always reflect it.)
    """
    known = _WANTS_BOS.get(tokenizer)  # asked once per tokenizer: with_bos runs for every scored sequence
    if known is None:
        bos = tokenizer.bos_token_id
        probe = tokenizer("a", add_special_tokens=True).input_ids if bos is not None else []
        known = bos is not None and (
            bool(getattr(tokenizer, "add_bos_token", False)) or (bool(probe) and probe[0] == bos)
        )
        _WANTS_BOS[tokenizer] = known
    return known


_WANTS_BOS: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


def with_bos(tokenizer: Any, ids: list[int]) -> list[int]:
    """``ids`` starting with exactly one BOS where the tokenizer wants one, never two.

    Rendered chats are encoded without special tokens (their template writes the
    markers it needs), so a model trained with a BOS first (Llama-2) would lose it;
    a template that writes the BOS itself already has it and gets no second one.
    """
    if wants_bos(tokenizer) and (not ids or ids[0] != tokenizer.bos_token_id):
        return [tokenizer.bos_token_id, *ids]
    return ids


def encode_prompt(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """(raw ids of a rendered chat, the ids a sequence starts from): the second with the BOS rule applied."""
    raw = tokenizer(text, add_special_tokens=False).input_ids
    return raw, with_bos(tokenizer, raw)


def label_token_ids(encode: Callable[[str], list[int]], prompt: str, prompt_ids: list[int], label: str) -> list[int]:
    """Tokens of ``label`` as the model would write them right after ``prompt``.

    ``encode`` adds no special tokens and ``prompt_ids`` is its encoding of ``prompt``.
    Tokenising prompt+label together respects merges at the boundary (as
    with sentencepiece's leading-space pieces); if the boundary moved, the
    label is tokenised alone.
    """
    full = encode(prompt + label)
    if full[: len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
        return full[len(prompt_ids) :]
    return encode(label)


def chat_prompt(tokenizer: Any, chat: list[dict[str, str]]) -> tuple[str, list[int], list[int]]:
    """(rendered chat with the assistant turn opened, its raw ids, the ids a sequence starts from)."""
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return (text, *encode_prompt(tokenizer, text))


def label_jobs(
    tokenizer: Any, chats: list[list[dict[str, str]]], labels: list[str]
) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, label ids) for every chat and label, chat by chat: what the engine and server backends score."""
    encode = lambda t: tokenizer(t, add_special_tokens=False).input_ids  # noqa: E731
    jobs = []
    for chat in chats:
        text, raw, ids = chat_prompt(tokenizer, chat)
        jobs += [(ids, label_token_ids(encode, text, raw, label)) for label in labels]
    return jobs


Prefix = tuple[int, ...]


MAX_TOKEN_LOGPROBS = 128  # vLLM's cap on logprob_token_ids per request (engine and server alike)


def next_token_requests(jobs: list[tuple[list[int], list[int]]], cap: int) -> list[tuple[Prefix, list[int]]]:
    """Label scoring as next-token reads: for each (prompt ids, label ids), every distinct prefix (the
    prompt, then the prompt plus each partial label) with the label tokens wanted after it, at most
    ``cap`` tokens a request.  Two one-token labels of one prompt make one request."""
    wanted: dict[Prefix, set[int]] = {}
    for ids, lab in jobs:
        for k, tok in enumerate(lab):
            wanted.setdefault(tuple(ids + lab[:k]), set()).add(tok)
    return [(prefix, sorted(toks)[i : i + cap]) for prefix, toks in wanted.items() for i in range(0, len(toks), cap)]


def label_sums(jobs: list[tuple[list[int], list[int]]], logprob: dict[tuple[Prefix, int], float]) -> list[float]:
    """Each job's label log-probability: the sum of its tokens' reads from :func:`next_token_requests`."""
    return [float(sum(logprob[tuple(ids + lab[:k]), tok] for k, tok in enumerate(lab))) for ids, lab in jobs]
