"""The transformers + PyTorch backend (CPU or GPU).

Batches are sorted by length and left-padded with explicit position ids, so a
padded row computes exactly what it would compute alone (up to float
rounding).  Only the positions whose logits are needed are projected to the
vocabulary (``logits_to_keep``).
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from . import Backend, Chat, Generation, register_backend
from .models import clear_quantizer_marker, resolve_model

# Tulu-2's format, for models whose tokenizer has no chat template.
TULU_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>", "<|endoftext|>")


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
        **unknown: Any,
    ):
        if unknown:
            raise UserError(f"--model-args: unknown key(s) {', '.join(unknown)} for backend hf")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        resolved = resolve_model(model, revision)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        try:
            torch_dtype = getattr(torch, dtype)
        except AttributeError:
            raise UserError(f"--model-args: unknown dtype {dtype!r}") from None
        kw = {"revision": resolved.revision, "trust_remote_code": trust_remote_code}
        self.tokenizer = AutoTokenizer.from_pretrained(resolved.load_path, **kw)
        self.model = AutoModelForCausalLM.from_pretrained(resolved.load_path, dtype=torch_dtype, **kw)
        clear_quantizer_marker(self.model)
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        tok = self.tokenizer
        if not tok.chat_template:
            tok.chat_template = TULU_TEMPLATE
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.pad_id = tok.pad_token_id
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tok.eos_token_id is not None:
            eos_ids.add(tok.eos_token_id)
        vocab = tok.get_vocab()
        eos_ids |= {vocab[t] for t in _END_OF_TURN if t in vocab and t in tok.all_special_tokens}
        self.eos_ids = sorted(eos_ids)
        self.identity = {**resolved.identity, "dtype": dtype}

    # ---- tokenisation -------------------------------------------------

    def prompt_text(self, chat: Chat) -> str:
        return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def label_ids(self, prompt: str, prompt_ids: list[int], label: str) -> list[int]:
        """Tokens of ``label`` as the model would write them right after ``prompt``.

        Tokenising prompt+label together respects merges at the boundary (as
        with sentencepiece's leading-space pieces); if the boundary moved, the
        label is tokenised alone.
        """
        full = self.encode(prompt + label)
        if full[: len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
            return full[len(prompt_ids):]
        return self.encode(label)

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
        """Log-softmax over the vocabulary at the last ``keep`` positions of each sequence."""
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

    def label_logprobs(self, chats: list[Chat], labels: list[str]) -> list[list[float]]:
        prompts = [self.prompt_text(c) for c in chats]
        prompt_ids = [self.encode(p) for p in prompts]
        lab_ids = [[self.label_ids(p, ids, l) for l in labels] for p, ids in zip(prompts, prompt_ids)]
        if all(len(li) == 1 for row in lab_ids for li in row):
            lps = self.forward_last(prompt_ids, 1)
            return [[float(lp[-1, li[0]]) for li in row] for lp, row in zip(lps, lab_ids)]
        # Multi-token labels: one sequence per (chat, label); the label's tokens
        # are scored at the last len(label) positions of prompt + label[:-1].
        seqs, where = [], []
        for c, (ids, row) in enumerate(zip(prompt_ids, lab_ids)):
            for j, li in enumerate(row):
                seqs.append(ids + li[:-1])
                where.append((c, j, li))
        keep = max(len(li) for _, _, li in where)
        lps = self.forward_last(seqs, keep)
        scores = [[0.0] * len(labels) for _ in chats]
        for lp, (c, j, li) in zip(lps, where):
            tail = lp[-len(li):]
            scores[c][j] = float(sum(tail[k, t] for k, t in enumerate(li)))
        return scores

    def generate(self, chats: list[Chat], max_new_tokens: list[int]) -> list[Generation]:
        import torch
        from transformers import GenerationConfig

        prompt_ids = [self.encode(self.prompt_text(c)) for c in chats]
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
