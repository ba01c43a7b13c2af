"""Model specs: from what the user typed to a loadable folder and an identity.

Accepted ``--model`` values:

* ``embedded`` (= ``embedded:qwen2.5-coder-0.5b``), ``embedded:smollm2-135m``,
  ``embedded:qwen2.5-coder-1.5b``: GGUF files shipped inside PyPI packages,
  joined from their parts, checked against a sha256, dequantized once and cached
  as safetensors;
* ``standin:tulu-smollm2``, ``standin:tulu-tiny``: offline stand-ins shaped like
  Tulu-2 (see :mod:`selfexplain.models.standin`), built once into the cache;
* a path to a ``.gguf`` file: dequantized once and cached the same way;
* a local folder with a transformers model;
* a hub id (``org/name``), with ``revision=`` in ``--model-args``.

The identity (a dict) names the weights exactly: the sha256 of a GGUF, the
resolved commit of a hub model, or a content fingerprint of a local folder.  It
goes into every run's configuration hash, so results of different weights never
mix.

One concept per module: ``catalogue`` (embedded models), ``gguf`` (conversion and tokenizer settings),
``resolve`` (spec to folder and identity), ``load`` (model and tokenizer), ``tokens`` (prompt and label tokens).
Backends, training and the pipeline all use it, so it sits below them.
"""

from __future__ import annotations

from .catalogue import DEFAULT_EMBEDDED, EMBEDDED, EmbeddedModel, file_sha256, join_embedded
from .gguf import (
    GGUF_CONVERSION,
    GGUF_NOTE,
    GGUF_PINNED,
    check_conversion_versions,
    clear_quantizer_marker,
    convert_gguf,
    gguf_scalars,
    gguf_tokenizer,
    gguf_tokenizer_settings,
    restore_gguf_settings,
    restored_settings,
)
from .load import TULU_TEMPLATE, load_model, load_tokenizer
from .resolve import ResolvedModel, adapter_fingerprint, resolve_model
from .tokens import (
    MAX_TOKEN_LOGPROBS,
    Prefix,
    chat_prompt,
    encode_prompt,
    generation_eos,
    label_jobs,
    label_sums,
    label_token_ids,
    next_token_requests,
    stop_token_ids,
    wants_bos,
    with_bos,
)

__all__ = [
    "TULU_TEMPLATE",
    "EmbeddedModel",
    "EMBEDDED",
    "DEFAULT_EMBEDDED",
    "ResolvedModel",
    "file_sha256",
    "join_embedded",
    "GGUF_CONVERSION",
    "GGUF_PINNED",
    "check_conversion_versions",
    "GGUF_NOTE",
    "convert_gguf",
    "gguf_tokenizer_settings",
    "gguf_scalars",
    "restore_gguf_settings",
    "gguf_tokenizer",
    "clear_quantizer_marker",
    "restored_settings",
    "resolve_model",
    "load_model",
    "load_tokenizer",
    "generation_eos",
    "stop_token_ids",
    "wants_bos",
    "with_bos",
    "encode_prompt",
    "label_token_ids",
    "chat_prompt",
    "label_jobs",
    "Prefix",
    "MAX_TOKEN_LOGPROBS",
    "next_token_requests",
    "label_sums",
    "adapter_fingerprint",
]
