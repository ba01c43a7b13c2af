"""Forward passes of the transformers backend: length buckets, right padding with explicit positions,
the last positions' distributions, and the key/value caches of shared prompt prefixes (kept for the generation
that continues a scored prompt).
"""

from __future__ import annotations

from typing import Any

from ...models import label_token_ids, with_bos
from .. import Chat


class Forward:
    """Tokenisation, forward passes and prefix caches, shared by scoring and decoding."""

    # The state HFBackend._setup gives every backend (annotated here for the mixins that read it).
    model: Any
    tokenizer: Any
    identity: dict[str, Any]
    device: Any
    batching: Any
    max_batch_size: int
    max_batch_tokens: int
    decode_rows: int
    pad_id: int | None
    eos_ids: list[int]
    share_prompts: bool
    _keeps_prompts: bool
    _prefix_memo: dict[tuple[int, ...], list]
    _prompt_kv: dict[tuple[int, ...], list]
    _fixed_shapes: bool

    # ---- batched forward ---------------------------------------------

    def prompt_text(self, chat: Chat) -> str:
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def prompt_ids(self, chat: Chat) -> list[int]:
        """The token ids a forward pass over ``chat`` starts from (one BOS first where the model wants it)."""
        return with_bos(self.tokenizer, self.encode(self.prompt_text(chat)))

    def context_window(self) -> int | None:
        n = getattr(self.model.config, "max_position_embeddings", None)
        return int(n) if isinstance(n, int) and n > 0 else None

    def prompt_lengths(self, chats: list[Chat]) -> list[int]:
        return [len(self.prompt_ids(c)) for c in chats]

    def label_ids(self, prompt: str, prompt_ids: list[int], label: str) -> list[int]:
        return label_token_ids(self.encode, prompt, prompt_ids, label)

    def _prefill(self, rows: list[tuple[int, list, list[int]]]):
        """Run each row's tokens after its prefix, whose keys and values are given (``(p, kv, tokens)``).

        The prefix region is left-padded (every prefix ends at the same column), the new tokens are
        right-padded after it, positions are explicit.  Returns the hidden states of the new tokens,
        the attention mask and the cache (which now holds both).
        """
        import torch
        from transformers import DynamicCache

        b = len(rows)
        width_p = max(p for p, _, _ in rows)
        width_s = max(len(s) for _, _, s in rows)
        mask = torch.zeros((b, width_p + width_s), dtype=torch.long)
        ids = torch.full((b, width_s), self.pad_id, dtype=torch.long)
        pos = torch.zeros((b, width_s), dtype=torch.long)
        layers = []
        for layer in range(len(self.model.get_decoder().layers) if width_p else 0):
            ref = next(kv for _, kv, _ in rows if kv)[layer][0]
            keys = ref.new_zeros((b, ref.shape[1], width_p, ref.shape[3]))
            values = keys.clone()
            for r, (p, kv, _) in enumerate(rows):
                if p:
                    keys[r, :, width_p - p :] = kv[layer][0][0]
                    values[r, :, width_p - p :] = kv[layer][1][0]
            layers.append((keys, values))
        for r, (p, _, s) in enumerate(rows):
            mask[r, width_p - p : width_p] = 1
            mask[r, width_p : width_p + len(s)] = 1
            ids[r, : len(s)] = torch.tensor(s)
            pos[r] = torch.arange(p, p + width_s)
        cache = (
            DynamicCache(ddp_cache_data=layers, config=self.model.config)
            if layers
            else DynamicCache(config=self.model.config)
        )
        hidden = self.model.get_decoder()(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=pos.to(self.device),
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state
        return hidden, mask, cache

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped longest-first, capped by rows and by padded tokens."""
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
        out: list[list[int]] = []
        for i in order:
            if (
                out
                and len(out[-1]) < self.max_batch_size
                and lengths[out[-1][0]] * (len(out[-1]) + 1) <= self.max_batch_tokens
            ):
                out[-1].append(i)
            else:
                out.append([i])
        return out

    def _pad(self, seqs: list[list[int]], width: int = 0):
        """Left-padded ids, mask and positions, at least ``width`` columns wide."""
        import torch

        width = max(width, *(len(s) for s in seqs))
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[r, width - len(s) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def forward_last(self, seqs: list[list[int]], keep: int):
        """Log-softmax over the vocabulary at the last ``keep`` positions of each sequence.

        The plain computation: whole sequences, left-padded, no shared prefix.
        """
        import torch

        out: list[Any] = []
        for batch in self._batches([len(s) for s in seqs]):
            ids, mask, pos = self._pad([seqs[i] for i in batch])
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
            lp = logits.float().log_softmax(-1).cpu()
            out.extend((i, lp[r]) for r, i in enumerate(batch))
        out.sort(key=lambda t: t[0])
        return [t[1] for t in out]

    @property
    def _supports_prefix(self) -> bool:
        cfg = self.model.config
        # Models that rescale logits after the head would need more than the head here.
        return not (getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None))

    def _prefix_kv(self, prefix: tuple[int, ...]):
        """Key/value states of a shared prefix, computed once and kept (a run has one or two)."""
        import torch

        hit = self._prefix_memo.get(prefix)
        if hit is None:
            with torch.inference_mode():
                cache = self.model.get_decoder()(
                    input_ids=torch.tensor([prefix], device=self.device), use_cache=True
                ).past_key_values
            hit = [(layer.keys, layer.values) for layer in cache.layers]
            if len(self._prefix_memo) >= 4:
                self._prefix_memo.pop(next(iter(self._prefix_memo)))
            self._prefix_memo[prefix] = hit
        return hit

    def _keep_prompt(self, ids: list[int], kv: list) -> None:
        key = tuple(ids)
        self._prompt_kv.pop(key, None)
        self._prompt_kv[key] = kv
        while len(self._prompt_kv) > KEEP_PROMPTS:
            self._prompt_kv.pop(next(iter(self._prompt_kv)))

    def _kept_prefix(self, ids: list[int]) -> tuple[int, ...] | None:
        """The longest kept prompt that ``ids`` begins with (and goes beyond)."""
        for n in sorted({len(k) for k in self._prompt_kv}, reverse=True):
            key = tuple(ids[:n])
            if n < len(ids) and key in self._prompt_kv:
                return key
        return None

    def _expand_kv(self, kv, batch: int):
        from transformers import DynamicCache

        return DynamicCache(
            ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv],
            config=self.model.config,
        )


KEEP_PROMPTS = 64  # scoring calls of at most this many sequences keep their caches (a chunk's classifications)
MIN_SHARED = 32  # prompts that share fewer leading tokens are not grouped
MIN_BRANCH = 4  # scored sequences reuse another's cache only when they share this many tokens more


def common_prefix_len(seqs: list[list[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n
