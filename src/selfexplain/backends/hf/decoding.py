"""Greedy decoding of our own on the prefix caches (a generation prompt starts from its scored prompt's
cache), transformers' ``generate`` as the reference, and the static-cache path for GPUs; sampled decoding on
the same loop (:meth:`Decoding.sample`).
"""

from __future__ import annotations

from typing import Any, Callable

from .. import Chat, Generation
from .forward import MIN_SHARED, Forward, common_prefix_len


class Decoding(Forward):
    """Greedy generation (``generate`` and its reference and GPU paths) and sampled generation."""

    # ---- generation ------------------------------------------------------------

    def generate(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        if not chats:
            return []
        if self.batching.static_cache:
            return self.generate_static(chats, max_new_tokens)
        if not (self.share_prompts and self._supports_prefix):
            return self.generate_plain(chats, max_new_tokens)
        return self._decode(chats, max_new_tokens, None)

    def sample(
        self, chats: list[Chat], max_new_tokens: list[int], temperature: float, seeds: list[int]
    ) -> list[Generation]:
        """Replies sampled at ``temperature``, each token drawn by the reply's own generator (seeded by its
        entry of ``seeds``), so a reply does not depend on which others share its batch."""
        import torch

        if not chats:
            return []
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]

        def pick(logits: Any, rows: list[int]) -> list[int]:
            probs = (logits.float() / temperature).softmax(-1).cpu()
            return [int(torch.multinomial(probs[k], 1, generator=gens[r])) for k, r in enumerate(rows)]

        if self._supports_prefix:
            return self._decode(chats, max_new_tokens, pick)
        # Logits rescaled after the head (soft-capping): transformers' sampler, one reply at a time.
        out = []
        for chat, budget, s in zip(chats, max_new_tokens, seeds):
            torch.manual_seed(int(s))
            out += self._hf_generate([self.prompt_ids(chat)], [budget], do_sample=True, temperature=temperature)
        return out

    def _decode(
        self, chats: list[Chat], max_new_tokens: list[int], pick: Callable[[Any, list[int]], list[int]] | None
    ) -> list[Generation]:
        prompt_ids = [self.prompt_ids(c) for c in chats]
        results: dict[int, Generation] = {}
        for batch in self._generation_batches(prompt_ids):
            for i, g in zip(
                [i for _, members in batch for i in members],
                self._decode_batch(prompt_ids, batch, max_new_tokens, pick),
            ):
                results[i] = g
        return [results[i] for i in range(len(chats))]

    def _generation_batches(self, prompt_ids: list[list[int]]) -> list[list[tuple[tuple[int, ...], list[int]]]]:
        """Prompts grouped by the prefix they share (a kept prompt, else their common prefix), then batched.

        Every member keeps at least one token of its own after the prefix, whose logits start decoding.
        """
        groups: dict[tuple[int, ...], list[int]] = {}
        loose = []
        for i, ids in enumerate(prompt_ids):
            kept = self._kept_prefix(ids)
            if kept is not None:
                groups.setdefault(kept, []).append(i)
            else:
                loose.append(i)
        # Prompts without a kept prefix: neighbours in sorted order that share a long prefix run it once.
        loose.sort(key=lambda i: prompt_ids[i])
        run: list[int] = []
        for i in loose + [-1]:
            if run and i >= 0 and common_prefix_len([prompt_ids[run[0]], prompt_ids[i]]) >= MIN_SHARED:
                run.append(i)
                continue
            if run:
                n = min(common_prefix_len([prompt_ids[j] for j in run]), min(len(prompt_ids[j]) for j in run) - 1)
                groups.setdefault(tuple(prompt_ids[run[0]][:n]), []).extend(run)
            run = [i] if i >= 0 else []
        # Longest prompts first, whole groups per batch (they share one prefix cache), as wide as the
        # computed (not shared) tokens allow; rows leave a batch as soon as their reply ends.
        order = sorted(groups.items(), key=lambda kv: -max(len(prompt_ids[i]) for i in kv[1]))
        batches: list[list[tuple[tuple[int, ...], list[int]]]] = []
        rows = width = 0
        for prefix, members in order:
            rest = max(len(prompt_ids[i]) - len(prefix) for i in members)
            if batches and (
                rows + len(members) > self.decode_rows
                or (rows + len(members)) * max(width, rest) > self.max_batch_tokens
            ):
                batches.append([])
                rows = width = 0
            if not batches:
                batches.append([])
            batches[-1].append((prefix, members))
            rows += len(members)
            width = max(width, rest)
        return batches

    def _prefix_caches(self, prefixes: list[tuple[int, ...]]) -> list[list]:
        """Per-layer (keys, values) of each prefix: kept from scoring, or computed in one left-padded pass."""
        import torch

        todo = [p for p in prefixes if p not in self._prompt_kv and len(p) > 0]
        computed: dict[tuple[int, ...], list] = {}
        if todo:
            ids, mask, pos = self._pad([list(p) for p in todo])
            with torch.inference_mode():
                cache = self.model.get_decoder()(
                    input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True
                ).past_key_values
            width = ids.shape[1]
            for r, p in enumerate(todo):
                computed[p] = [
                    (layer.keys[r : r + 1, :, width - len(p) :], layer.values[r : r + 1, :, width - len(p) :])
                    for layer in cache.layers
                ]
        return [self._prompt_kv.get(p) or computed.get(p) or [] for p in prefixes]

    def _decode_batch(
        self,
        prompt_ids: list[list[int]],
        batch: list[tuple[tuple[int, ...], list[int]]],
        budgets: list[int],
        pick: Callable[[Any, list[int]], list[int]] | None = None,
    ) -> list[Generation]:
        """Decoding of every member of ``batch``, each from its group's prefix cache: greedy, or each next token
        chosen by ``pick(logits, indices of the chats in the batch's rows)``."""
        import torch

        kvs = self._prefix_caches([prefix for prefix, _ in batch])
        rows = [(len(prefix), kv, i) for (prefix, members), kv in zip(batch, kvs) for i in members]
        suffixes = [prompt_ids[i][p:] for p, _, i in rows]
        b = len(rows)
        decoder, head = self.model.get_decoder(), self.model.get_output_embeddings()
        lengths = torch.tensor([p + len(s) for (p, _, _), s in zip(rows, suffixes)])
        budget = [budgets[i] for _, _, i in rows]
        out: list[list[int]] = [[] for _ in rows]
        done = [False] * b
        active = list(range(b))  # the rows still in the tensors, in order
        with torch.inference_mode():
            hidden, mask, cache = self._prefill([(p, kv, s) for (p, kv, _), s in zip(rows, suffixes)])
            last = torch.tensor([len(s) - 1 for s in suffixes], device=self.device)
            logits = head(hidden[torch.arange(b, device=self.device), last])
            while True:
                nxt = logits.float().argmax(-1).tolist() if pick is None else pick(logits, [rows[r][2] for r in active])
                for k, r in enumerate(active):
                    out[r].append(nxt[k])
                    done[r] = nxt[k] in self.eos_ids or len(out[r]) >= budget[r]
                keep = [k for k, r in enumerate(active) if not done[r]]
                if not keep:
                    break
                if len(keep) < len(active):
                    # Finished rows leave the batch: a step costs in proportion to its rows (replies of
                    # 3 tokens and of 80 share a batch).
                    idx = torch.tensor(keep, device=self.device)
                    for layer in cache.layers:
                        layer.keys, layer.values = layer.keys[idx], layer.values[idx]
                    mask, lengths = mask[keep], lengths[keep]
                    active, nxt = [active[k] for k in keep], [nxt[k] for k in keep]
                mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
                hidden = decoder(
                    input_ids=torch.tensor([[t] for t in nxt], device=self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=lengths[:, None].to(self.device),
                    past_key_values=cache,
                    use_cache=True,
                ).last_hidden_state
                lengths += 1
                logits = head(hidden[:, -1])
        return [self._generation(toks) for toks in out]

    def _generation(self, toks: list[int]) -> Generation:
        stop = next((k for k, t in enumerate(toks) if t in self.eos_ids), None)
        body = toks if stop is None else toks[:stop]
        return Generation(self.tokenizer.decode(body, skip_special_tokens=True).strip(), len(body), stop is None)

    def generate_plain(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        """Reference generation: ``transformers``' ``generate`` on whole, left-padded prompts."""
        prompt_ids = [self.prompt_ids(c) for c in chats]
        results: dict[int, Generation] = {}
        for batch in self._batches([len(p) for p in prompt_ids]):
            rows = [prompt_ids[i] for i in batch]
            results.update(zip(batch, self._hf_generate(rows, [max_new_tokens[i] for i in batch])))
        return [results[i] for i in range(len(chats))]

    def _hf_generate(self, rows: list[list[int]], budgets: list[int], width: int = 0, **cache: Any) -> list[Generation]:
        """transformers' ``generate`` (greedy unless ``cache`` asks it to sample) on left-padded ``rows`` (at least
        ``width`` wide); a reply per budget (rows beyond the budgets only pad the batch)."""
        import torch
        from transformers import GenerationConfig

        ids, mask, _ = self._pad(rows, width)
        sampling = {"do_sample": False, **{k: cache.pop(k) for k in ("do_sample", "temperature") if k in cache}}
        cfg = GenerationConfig(
            max_new_tokens=max(budgets),
            **sampling,
            num_beams=1,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            **cache,
        )
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
        new = out[:, ids.shape[1] :].cpu().tolist()
        return [self._generation(new[r][:b]) for r, b in enumerate(budgets)]

    def generate_static(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        """Greedy decoding through transformers' static key/value cache, ``decode_rows`` replies at a time.

        The GPU path: the cache is allocated once per batch shape, so transformers compiles the decode step
        (on CUDA) and checks for finished rows without a host synchronisation per step.  Batches are padded
        to a power-of-two number of rows and prompts to a multiple of 64 tokens there, and the cache length
        only grows, so a run compiles a handful of shapes, not one per batch.  Whole prompts are prefilled
        (a GPU prefill is cheap; the decode steps are what cost).  Same replies as the eager paths, up to
        float rounding (tested on CPU, where the static cache runs uncompiled).
        """
        prompt_ids = [self.prompt_ids(c) for c in chats]
        order = sorted(range(len(chats)), key=lambda i: (-len(prompt_ids[i]), i))
        results: dict[int, Generation] = {}
        for start in range(0, len(order), self.decode_rows):
            batch = order[start : start + self.decode_rows]
            rows = [prompt_ids[i] for i in batch]
            width = len(rows[0])
            if self._fixed_shapes:
                rows += [rows[-1]] * (min(self.decode_rows, 1 << (len(rows) - 1).bit_length()) - len(rows))
                width = -(-width // 64) * 64
            budgets = [max_new_tokens[i] for i in batch]
            results.update(
                zip(
                    batch,
                    self._hf_generate(
                        rows,
                        budgets,
                        width,
                        cache_implementation="static",
                        max_cache_len=-(-(width + max(budgets)) // 256) * 256,
                    ),
                )
            )
        return [results[i] for i in range(len(chats))]
