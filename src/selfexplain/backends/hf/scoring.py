"""Label scoring: the log-probability of every label verbalizer as the whole opening of the reply, a call's
shared prefix run once and its sequences branching from each other's caches.
"""

from __future__ import annotations

from ...models import with_bos
from .. import Chat
from .forward import KEEP_PROMPTS, MIN_BRANCH, Forward, common_prefix_len


class LabelScoring(Forward):
    """Label scoring (``label_logprobs``, ``top_tokens``)."""

    def _rows(self, chats: list[Chat], labels: list[str]) -> list[tuple[list[list[int]], list[list[int]]]]:
        """Per chat: the sequence to run and each label's tokens, scored at its last positions.

        With single-token labels the sequence is the prompt and every label is
        read off its last position.  Otherwise there is one sequence per label,
        prompt + label[:-1], scored at its last len(label) positions.
        """
        prompts = [self.prompt_text(c) for c in chats]
        raw_ids = [self.encode(p) for p in prompts]
        lab_ids = [[self.label_ids(p, ids, lab) for lab in labels] for p, ids in zip(prompts, raw_ids)]
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
                out.append(
                    [float(sum(d[len(d) - len(li) + k, t] for k, t in enumerate(li))) for d, li in zip(ds, labels)]
                )
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

        n_prefix = common_prefix_len(seqs)
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
                mask[r, n_prefix : n_prefix + len(suffixes[i])] = 1
            pos = torch.arange(n_prefix, n_prefix + width).expand(len(batch), width)
            cache = self._expand_kv(prefix_kv, len(batch))
            with torch.inference_mode():
                hidden = decoder(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=pos.to(self.device),
                    past_key_values=cache,
                    use_cache=True,
                ).last_hidden_state
                for r, i in enumerate(batch):
                    if i in anchors or (self._keeps_prompts and len(seqs) <= KEEP_PROMPTS):
                        kv = [
                            (
                                layer.keys[r : r + 1, :, : len(seqs[i])].clone(),
                                layer.values[r : r + 1, :, : len(seqs[i])].clone(),
                            )
                            for layer in cache.layers
                        ]
                        if i in anchors:
                            anchor_kv[i] = kv
                        if self._keeps_prompts and len(seqs) <= KEEP_PROMPTS:
                            self._keep_prompt(seqs[i], kv)
                rows = torch.tensor([r for r, i in enumerate(batch) for _ in range(keeps[i])])
                cols = torch.tensor([len(suffixes[i]) - keeps[i] + k for i in batch for k in range(keeps[i])])
                lp = head(hidden[rows.to(self.device), cols.to(self.device)]).float().log_softmax(-1).cpu()
            at = 0
            for i in batch:
                out[i] = lp[at : at + keeps[i]]
                at += keeps[i]
        # Sequences that branch from an anchor (erased variants of one input) start from its cache.
        rest = list(branches)
        for part in self._batches([len(seqs[i]) - branches[i][1] for i in rest]):
            batch = [rest[j] for j in part]
            rows = [
                (
                    branches[i][1],
                    [(k[:, :, : branches[i][1]], v[:, :, : branches[i][1]]) for k, v in anchor_kv[branches[i][0]]],
                    seqs[i][branches[i][1] :],
                )
                for i in batch
            ]
            with torch.inference_mode():
                hidden, _, cache = self._prefill(rows)
                if (
                    self._keeps_prompts and len(seqs) <= KEEP_PROMPTS
                ):  # small calls keep their prompts for generation, as above
                    width_p = max(p for p, _, _ in rows)
                    for r, ((p, _, s), i) in enumerate(zip(rows, batch)):
                        self._keep_prompt(
                            seqs[i],
                            [
                                (
                                    layer.keys[r : r + 1, :, width_p - p : width_p + len(s)].clone(),
                                    layer.values[r : r + 1, :, width_p - p : width_p + len(s)].clone(),
                                )
                                for layer in cache.layers
                            ],
                        )
                r_idx = torch.tensor([r for r, i in enumerate(batch) for _ in range(keeps[i])])
                c_idx = torch.tensor(
                    [len(seqs[i]) - branches[i][1] - keeps[i] + k for i in batch for k in range(keeps[i])]
                )
                lp = head(hidden[r_idx.to(self.device), c_idx.to(self.device)]).float().log_softmax(-1).cpu()
            at = 0
            for i in batch:
                out[i] = lp[at : at + keeps[i]]
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
            if groups and common_prefix_len([seqs[groups[-1][0]], seqs[i]]) >= n_prefix + MIN_BRANCH:
                groups[-1].append(i)
            else:
                groups.append([i])
        plan: dict[int, tuple[int, int]] = {}
        for g in groups:
            if len(g) < 2:
                continue
            shared = {(a, b): common_prefix_len([seqs[a], seqs[b]]) for a in g for b in g if a < b}
            lcp = lambda a, b: shared[min(a, b), max(a, b)]  # noqa: E731
            anchor = max(g, key=lambda a: (sum(lcp(a, b) for b in g if b != a), -a))
            for i in g:
                if i != anchor:
                    point = min(lcp(i, anchor), len(seqs[i]) - keeps[i])
                    if point - n_prefix >= MIN_BRANCH:
                        plan[i] = (anchor, point)
        return plan
