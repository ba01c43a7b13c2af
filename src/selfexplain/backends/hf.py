"""The transformers + PyTorch backend (CPU or GPU).

Label scoring runs the token prefix that all sequences of a call share (chat
template, system prompt, task text before the input) once, keeps its
key/value cache, and runs only the rest: length-bucketed, right-padded, with
explicit position ids, projecting to the vocabulary only the positions whose
label probabilities are needed.  Generation batches are sorted by length and
left-padded.  Either way a padded row computes what it would compute alone,
up to float rounding (tests hold it to 1e-4 against one unpadded pass per row).
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from . import Backend, Chat, Generation, register_backend
from .models import TULU_TEMPLATE, label_token_ids, load_model, stop_token_ids, with_bos  # noqa: F401  (TULU_TEMPLATE re-exported)


@register_backend("hf")
class HFBackend(Backend):
    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        max_batch_size: int = 16,
        max_batch_tokens: int = 8192,
        trust_remote_code: bool = False,
        adapter: str | None = None,
        **unknown: Any,
    ):
        if unknown:
            raise UserError(f"--model-args: unknown key(s) {', '.join(unknown)} for backend hf")
        loaded = load_model(
            model, revision=revision, dtype=dtype, device=device, trust_remote_code=trust_remote_code, adapter=adapter
        )
        self._setup(*loaded, max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, identity: dict[str, Any], **batching: int) -> "HFBackend":
        """A backend around a model that is already loaded (training reuses its model for replay)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, identity, **batching)
        return self

    def _setup(self, model: Any, tokenizer: Any, identity: dict[str, Any], max_batch_size: int = 16,
               max_batch_tokens: int = 8192) -> None:
        self.model, self.tokenizer, self.identity = model, tokenizer, identity
        self.model.eval()
        self.device = self.model.device
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.pad_id = self.tokenizer.pad_token_id
        self.eos_ids = stop_token_ids(self.tokenizer, self.model.generation_config.eos_token_id)
        self._prefix_memo: dict[tuple[int, ...], list] = {}

    # ---- tokenisation -------------------------------------------------

    def prompt_text(self, chat: Chat) -> str:
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def prompt_ids(self, chat: Chat) -> list[int]:
        """The token ids a forward pass over ``chat`` starts from (one BOS first where the model wants it)."""
        return with_bos(self.tokenizer, self.encode(self.prompt_text(chat)))

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

    def _pad(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
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
        suffixes = [s[n_prefix:] for s in seqs]
        out: list = [None] * len(seqs)
        decoder, head = self.model.get_decoder(), self.model.get_output_embeddings()
        for batch in self._batches([len(s) + n_prefix for s in suffixes]):
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
                rows = torch.tensor([r for r, i in enumerate(batch) for _ in range(keeps[i])])
                cols = torch.tensor([len(suffixes[i]) - keeps[i] + k for i in batch for k in range(keeps[i])])
                lp = head(hidden[rows.to(self.device), cols.to(self.device)]).float().log_softmax(-1).cpu()
            at = 0
            for i in batch:
                out[i] = lp[at: at + keeps[i]]
                at += keeps[i]
        return out

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

    def _expand_kv(self, kv, batch: int):
        from transformers import DynamicCache

        return DynamicCache(
            ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv],
            config=self.model.config,
        )

    def generate(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        import torch
        from transformers import GenerationConfig

        prompt_ids = [self.prompt_ids(c) for c in chats]
        results: dict[int, Generation] = {}
        for batch in self._batches([len(p) for p in prompt_ids]):
            ids, mask, _ = self._pad([prompt_ids[i] for i in batch])
            budget = max(max_new_tokens[i] for i in batch)
            cfg = GenerationConfig(
                max_new_tokens=budget, do_sample=False, num_beams=1,
                eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            )
            with torch.inference_mode():
                out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
            new = out[:, ids.shape[1]:].cpu().tolist()
            for r, i in enumerate(batch):
                toks = new[r][: max_new_tokens[i]]
                stop = next((k for k, t in enumerate(toks) if t in self.eos_ids), None)
                body = toks if stop is None else toks[:stop]
                text = self.tokenizer.decode(body, skip_special_tokens=True)
                results[i] = Generation(text.strip(), len(body), stop is None)
        return [results[i] for i in range(len(chats))]


def _common_prefix_len(seqs: list[list[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n
