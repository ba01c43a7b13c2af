"""The transformers + PyTorch backend (CPU or GPU).

Label scoring runs the token prefix that all sequences of a call share (chat
template, system prompt, task text before the input) once, keeps its
key/value cache, and runs only the rest: length-bucketed, right-padded, with
explicit position ids, projecting to the vocabulary only the positions whose
label probabilities are needed.

Generation is greedy decoding of our own on the same cache machinery, because
the protocol's prompts overlap: the three explanation chats of a sample begin
with its classification chat, which label scoring has just run.  Prompts of
small scoring calls (a chunk's classifications) keep their key/value cache for
a while; a generation prompt that begins with one of them starts from that
cache, and prompts that share a longer prefix (the styles of one sample) run it
once.  Only the rest of each prompt is computed.  ``generate_plain`` is the
reference: ``transformers``' own ``generate`` on whole left-padded prompts.
Either way a padded row computes what it would compute alone, up to float
rounding (tests hold scores to 1e-4 against one unpadded pass per row, and
greedy texts equal to the reference).

That is the CPU path.  On a GPU (see :mod:`.batching`) the batch sizes are planned from free memory, and
replies are decoded by ``generate_static``: transformers' static key/value cache with its compiled decode
step, many replies per weight read, whole prompts prefilled; ``--model-args static_cache=false`` keeps the
shared path there too.
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from . import Backend, Chat, Generation
from .batching import CPU, device_plan, with_overrides
from ..models import TULU_TEMPLATE, label_token_ids, load_model, stop_token_ids, with_bos  # noqa: F401  (TULU_TEMPLATE re-exported)


class HFBackend(Backend):
    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        max_batch_size: int | None = None,
        max_batch_tokens: int | None = None,
        decode_rows: int | None = None,
        static_cache: bool | None = None,
        trust_remote_code: bool = False,
        adapter: str | None = None,
        share_prompts: bool = True,
        **unknown: Any,
    ):
        if unknown:
            raise UserError(f"--model-args: unknown key(s) {', '.join(unknown)} for backend hf")
        sizes = dict(max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens, decode_rows=decode_rows,
                     static_cache=static_cache)
        with_overrides(CPU, **sizes)  # a bad size fails before a model loads
        loaded = load_model(
            model, revision=revision, dtype=dtype, device=device, trust_remote_code=trust_remote_code, adapter=adapter
        )
        self._setup(*loaded, share_prompts=share_prompts, **sizes)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, identity: dict[str, Any], **batching: Any) -> "HFBackend":
        """A backend around a model that is already loaded (training reuses its model for replay)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, identity, **batching)
        return self

    def _setup(self, model: Any, tokenizer: Any, identity: dict[str, Any], share_prompts: bool = True,
               **sizes: Any) -> None:
        self.model, self.tokenizer, self.identity = model, tokenizer, identity
        self.model.eval()
        self.device = self.model.device
        # Sizes from the device and the model (fixed on a CPU), then what --model-args gave.
        self.batching = with_overrides(device_plan(self.model), **sizes)
        self.max_batch_size = self.batching.max_batch_size
        self.max_batch_tokens = self.batching.max_batch_tokens
        self.decode_rows = self.batching.decode_rows
        self.pad_id = self.tokenizer.pad_token_id
        self.eos_ids = stop_token_ids(self.tokenizer, self.model.generation_config.eos_token_id)
        self._prefix_memo: dict[tuple[int, ...], list] = {}
        # Key/value caches of recently scored prompts, for the generation that continues them
        # (``share_prompts=False``: off, and generation is transformers' own on whole prompts; a static-cache
        # decode starts from whole prompts too, so it keeps none).  Weights are assumed fixed for the
        # backend's lifetime.
        self.share_prompts = share_prompts
        self._keeps_prompts = share_prompts and not self.batching.static_cache
        self._prompt_kv: dict[tuple[int, ...], list] = {}
        # A compiled decode step is specialised to its shapes: pad batches to a few sizes there.
        self._fixed_shapes = self.device.type == "cuda"

    def runtime(self) -> dict[str, Any]:
        return {"device": str(self.device), "batching": self.batching.to_dict()}

    # ---- tokenisation -------------------------------------------------

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

    # ---- batched forward ---------------------------------------------

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped longest-first, capped by rows and by padded tokens."""
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
        out: list[list[int]] = []
        for i in order:
            if out and len(out[-1]) < self.max_batch_size and lengths[out[-1][0]] * (len(out[-1]) + 1) <= self.max_batch_tokens:
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
            ids[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[r, width - len(s):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def forward_last(self, seqs: list[list[int]], keep: int):
        """Log-softmax over the vocabulary at the last ``keep`` positions of each sequence.

        The plain computation: whole sequences, left-padded, no shared prefix.
        """
        import torch

        out = []
        for batch in self._batches([len(s) for s in seqs]):
            ids, mask, pos = self._pad([seqs[i] for i in batch])
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
            lp = logits.float().log_softmax(-1).cpu()
            out.extend((i, lp[r]) for r, i in enumerate(batch))
        out.sort(key=lambda t: t[0])
        return [t[1] for t in out]

    def _rows(self, chats: list[Chat], labels: list[str]) -> list[tuple[list[list[int]], list[list[int]]]]:
        """Per chat: the sequence to run and each label's tokens, scored at its last positions.

        With single-token labels the sequence is the prompt and every label is
        read off its last position.  Otherwise there is one sequence per label,
        prompt + label[:-1], scored at its last len(label) positions.
        """
        prompts = [self.prompt_text(c) for c in chats]
        raw_ids = [self.encode(p) for p in prompts]
        lab_ids = [[self.label_ids(p, ids, l) for l in labels] for p, ids in zip(prompts, raw_ids)]
        prompt_ids = [with_bos(self.tokenizer, ids) for ids in raw_ids]
        if len(labels) > 1 and all(len(li) == 1 for row in lab_ids for li in row):
            return [([ids], row) for ids, row in zip(prompt_ids, lab_ids)]
        return [([ids + li[:-1] for li in row], row) for ids, row in zip(prompt_ids, lab_ids)]

    @staticmethod
    def _gather(rows, dists) -> list[list[float]]:
        """Sum each label's token log-probs from the distributions of its sequence's last positions."""
        out, it = [], iter(dists)
        for seqs, labels in rows:
            ds = [next(it) for _ in seqs]
            if len(seqs) != len(labels):  # single-token labels share one distribution
                out.append([float(ds[0][-1, li[0]]) for li in labels])
            else:
                out.append([float(sum(d[len(d) - len(li) + k, t] for k, t in enumerate(li))) for d, li in zip(ds, labels)])
        return out

    def label_logprobs(self, chats: list[Chat], labels: list[str]) -> list[list[float]]:
        if not chats:
            return []
        rows = self._rows(chats, labels)
        seqs = [s for ss, _ in rows for s in ss]
        keeps = []
        for ss, ls in rows:
            keeps += [len(li) for li in ls] if len(ss) == len(ls) else [1]
        return self._gather(rows, self._last_distributions(seqs, keeps))

    def top_tokens(self, chats: list[Chat], k: int) -> list[list[tuple[str, float]]]:
        if not chats:
            return []
        dists = self._last_distributions([self.prompt_ids(c) for c in chats], [1] * len(chats))
        out = []
        for d in dists:
            lp, ids = d[-1].topk(k)
            out.append([(self.tokenizer.decode([int(t)]), float(v)) for v, t in zip(lp, ids)])
        return out

    def label_logprobs_plain(self, chats: list[Chat], labels: list[str]) -> list[list[float]]:
        """Reference computation: one full forward pass per sequence, batch size 1, all logits."""
        import torch

        rows = self._rows(chats, labels)
        dists = []
        for seqs, labs in rows:
            keep = max(len(li) for li in labs)
            for ids in seqs:
                with torch.inference_mode():
                    logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits
                # Only the scored tail is kept: every position's full-vocabulary distribution of every
                # variant would be ~60 MB per sequence (64 tweets' variants ran out of 24 GB).
                dists.append(logits[0, -keep:].float().log_softmax(-1).cpu())
        return self._gather(rows, dists)

    # ---- shared-prefix scoring ---------------------------------------------

    def _last_distributions(self, seqs: list[list[int]], keeps: list[int]):
        """Log-softmax at the last ``keeps[i]`` positions of each sequence, sharing their common prefix.

        The token prefix that every sequence shares (the chat template and the
        task's instructions before the input) is run once and its key/value cache
        reused by every batch; the rest is bucketed by length, right-padded, and
        only the needed positions are projected to the vocabulary.
        """
        import torch

        n_prefix = _common_prefix_len(seqs)
        # The positions that are scored must lie after the prefix.
        n_prefix = min(n_prefix, min(len(s) - k for s, k in zip(seqs, keeps)))
        if n_prefix < 4 or not self._supports_prefix:
            return [d[-k:] for d, k in zip(self.forward_last(seqs, max(keeps)), keeps)]
        prefix_kv = self._prefix_kv(tuple(seqs[0][:n_prefix]))
        branches = self._branch_plan(seqs, keeps, n_prefix) if self.share_prompts else {}
        direct = [i for i in range(len(seqs)) if i not in branches]
        anchors = {a for a, _ in branches.values()}
        anchor_kv: dict[int, list] = {}
        suffixes = [s[n_prefix:] for s in seqs]
        out: list = [None] * len(seqs)
        decoder, head = self.model.get_decoder(), self.model.get_output_embeddings()
        for part in self._batches([len(suffixes[i]) + n_prefix for i in direct]):
            batch = [direct[j] for j in part]
            width = max(len(suffixes[i]) for i in batch)
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), n_prefix + width), dtype=torch.long)
            mask[:, :n_prefix] = 1
            for r, i in enumerate(batch):
                ids[r, : len(suffixes[i])] = torch.tensor(suffixes[i])
                mask[r, n_prefix: n_prefix + len(suffixes[i])] = 1
            pos = torch.arange(n_prefix, n_prefix + width).expand(len(batch), width)
            cache = self._expand_kv(prefix_kv, len(batch))
            with torch.inference_mode():
                hidden = decoder(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                    position_ids=pos.to(self.device), past_key_values=cache, use_cache=True,
                ).last_hidden_state
                for r, i in enumerate(batch):
                    if i in anchors or (self._keeps_prompts and len(seqs) <= KEEP_PROMPTS):
                        kv = [(layer.keys[r:r + 1, :, : len(seqs[i])].clone(),
                               layer.values[r:r + 1, :, : len(seqs[i])].clone()) for layer in cache.layers]
                        if i in anchors:
                            anchor_kv[i] = kv
                        if self._keeps_prompts and len(seqs) <= KEEP_PROMPTS:
                            self._keep_prompt(seqs[i], kv)
                rows = torch.tensor([r for r, i in enumerate(batch) for _ in range(keeps[i])])
                cols = torch.tensor([len(suffixes[i]) - keeps[i] + k for i in batch for k in range(keeps[i])])
                lp = head(hidden[rows.to(self.device), cols.to(self.device)]).float().log_softmax(-1).cpu()
            at = 0
            for i in batch:
                out[i] = lp[at: at + keeps[i]]
                at += keeps[i]
        # Sequences that branch from an anchor (erased variants of one input) start from its cache.
        rest = list(branches)
        for part in self._batches([len(seqs[i]) - branches[i][1] for i in rest]):
            batch = [rest[j] for j in part]
            rows = [(branches[i][1], [(k[:, :, : branches[i][1]], v[:, :, : branches[i][1]])
                                      for k, v in anchor_kv[branches[i][0]]], seqs[i][branches[i][1]:]) for i in batch]
            with torch.inference_mode():
                hidden, _, cache = self._prefill(rows)
                if self._keeps_prompts and len(seqs) <= KEEP_PROMPTS:  # small calls keep their prompts for generation, as above
                    width_p = max(p for p, _, _ in rows)
                    for r, ((p, _, s), i) in enumerate(zip(rows, batch)):
                        self._keep_prompt(seqs[i], [(layer.keys[r:r + 1, :, width_p - p: width_p + len(s)].clone(),
                                                     layer.values[r:r + 1, :, width_p - p: width_p + len(s)].clone())
                                                    for layer in cache.layers])
                r_idx = torch.tensor([r for r, i in enumerate(batch) for _ in range(keeps[i])])
                c_idx = torch.tensor([len(seqs[i]) - branches[i][1] - keeps[i] + k for i in batch for k in range(keeps[i])])
                lp = head(hidden[r_idx.to(self.device), c_idx.to(self.device)]).float().log_softmax(-1).cpu()
            at = 0
            for i in batch:
                out[i] = lp[at: at + keeps[i]]
                at += keeps[i]
        return out

    @staticmethod
    def _branch_plan(seqs: list[list[int]], keeps: list[int], n_prefix: int) -> dict[int, tuple[int, int]]:
        """Sequence -> (anchor, branch point) for sequences that can start from another one's cache.

        Sequences that share more than the call's common prefix (an input and its erased variants) form a
        group; its anchor is the member sharing the most with the others (the unerased input), computed in
        full; every other member reuses the anchor's keys and values up to where their token ids first
        differ, and computes only the rest (at least its scored positions).
        """
        order = sorted(range(len(seqs)), key=lambda i: seqs[i])
        groups: list[list[int]] = []
        for i in order:
            if groups and _common_prefix_len([seqs[groups[-1][0]], seqs[i]]) >= n_prefix + MIN_BRANCH:
                groups[-1].append(i)
            else:
                groups.append([i])
        plan: dict[int, tuple[int, int]] = {}
        for g in groups:
            if len(g) < 2:
                continue
            shared = {(a, b): _common_prefix_len([seqs[a], seqs[b]]) for a in g for b in g if a < b}
            lcp = lambda a, b: shared[min(a, b), max(a, b)]  # noqa: E731
            anchor = max(g, key=lambda a: (sum(lcp(a, b) for b in g if b != a), -a))
            for i in g:
                if i != anchor:
                    point = min(lcp(i, anchor), len(seqs[i]) - keeps[i])
                    if point - n_prefix >= MIN_BRANCH:
                        plan[i] = (anchor, point)
        return plan

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

    # ---- generation ------------------------------------------------------------

    def generate(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        if not chats:
            return []
        if self.batching.static_cache:
            return self.generate_static(chats, max_new_tokens)
        if not (self.share_prompts and self._supports_prefix):
            return self.generate_plain(chats, max_new_tokens)
        prompt_ids = [self.prompt_ids(c) for c in chats]
        results: dict[int, Generation] = {}
        for batch in self._generation_batches(prompt_ids):
            for i, g in zip([i for _, members in batch for i in members],
                            self._decode_batch(prompt_ids, batch, max_new_tokens)):
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
            if run and i >= 0 and _common_prefix_len([prompt_ids[run[0]], prompt_ids[i]]) >= MIN_SHARED:
                run.append(i)
                continue
            if run:
                n = min(_common_prefix_len([prompt_ids[j] for j in run]), min(len(prompt_ids[j]) for j in run) - 1)
                groups.setdefault(tuple(prompt_ids[run[0]][:n]), []).extend(run)
            run = [i] if i >= 0 else []
        # Longest prompts first, whole groups per batch (they share one prefix cache), as wide as the
        # computed (not shared) tokens allow; rows leave a batch as soon as their reply ends.
        order = sorted(groups.items(), key=lambda kv: -max(len(prompt_ids[i]) for i in kv[1]))
        batches: list[list[tuple[tuple[int, ...], list[int]]]] = []
        rows = width = 0
        for prefix, members in order:
            rest = max(len(prompt_ids[i]) - len(prefix) for i in members)
            if batches and (rows + len(members) > self.decode_rows
                            or (rows + len(members)) * max(width, rest) > self.max_batch_tokens):
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
                cache = self.model.get_decoder()(input_ids=ids, attention_mask=mask, position_ids=pos,
                                                 use_cache=True).past_key_values
            width = ids.shape[1]
            for r, p in enumerate(todo):
                computed[p] = [(layer.keys[r:r + 1, :, width - len(p):], layer.values[r:r + 1, :, width - len(p):])
                               for layer in cache.layers]
        return [self._prompt_kv.get(p) or computed.get(p) or [] for p in prefixes]

    def _decode_batch(self, prompt_ids: list[list[int]], batch: list[tuple[tuple[int, ...], list[int]]],
                      budgets: list[int]) -> list[Generation]:
        """Greedy decoding of every member of ``batch``, each from its group's prefix cache."""
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
                nxt = logits.float().argmax(-1).tolist()
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
                hidden = decoder(input_ids=torch.tensor([[t] for t in nxt], device=self.device),
                                 attention_mask=mask.to(self.device), position_ids=lengths[:, None].to(self.device),
                                 past_key_values=cache, use_cache=True).last_hidden_state
                lengths += 1
                logits = head(hidden[:, -1])
        return [self._generation(toks) for toks in out]

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
                    keys[r, :, width_p - p:] = kv[layer][0][0]
                    values[r, :, width_p - p:] = kv[layer][1][0]
            layers.append((keys, values))
        for r, (p, _, s) in enumerate(rows):
            mask[r, width_p - p: width_p] = 1
            mask[r, width_p: width_p + len(s)] = 1
            ids[r, : len(s)] = torch.tensor(s)
            pos[r] = torch.arange(p, p + width_s)
        cache = (DynamicCache(ddp_cache_data=layers, config=self.model.config) if layers
                 else DynamicCache(config=self.model.config))
        hidden = self.model.get_decoder()(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                          position_ids=pos.to(self.device), past_key_values=cache,
                                          use_cache=True).last_hidden_state
        return hidden, mask, cache

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

    def _hf_generate(self, rows: list[list[int]], budgets: list[int], width: int = 0,
                     **cache: Any) -> list[Generation]:
        """transformers' greedy ``generate`` on left-padded ``rows`` (at least ``width`` wide); a reply per
        budget (rows beyond the budgets only pad the batch)."""
        import torch
        from transformers import GenerationConfig

        ids, mask, _ = self._pad(rows, width)
        cfg = GenerationConfig(max_new_tokens=max(budgets), do_sample=False, num_beams=1, eos_token_id=self.eos_ids,
                               pad_token_id=self.pad_id, **cache)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
        new = out[:, ids.shape[1]:].cpu().tolist()
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
            batch = order[start: start + self.decode_rows]
            rows = [prompt_ids[i] for i in batch]
            width = len(rows[0])
            if self._fixed_shapes:
                rows += [rows[-1]] * (min(self.decode_rows, 1 << (len(rows) - 1).bit_length()) - len(rows))
                width = -(-width // 64) * 64
            budgets = [max_new_tokens[i] for i in batch]
            results.update(zip(batch, self._hf_generate(rows, budgets, width, cache_implementation="static",
                                                        max_cache_len=-(-(width + max(budgets)) // 256) * 256)))
        return [results[i] for i in range(len(chats))]

KEEP_PROMPTS = 64  # scoring calls of at most this many sequences keep their caches (a chunk's classifications)
MIN_SHARED = 32  # prompts that share fewer leading tokens are not grouped
MIN_BRANCH = 4  # scored sequences reuse another's cache only when they share this many tokens more


def _common_prefix_len(seqs: list[list[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n
