"""Shared by the backend tests."""

import pytest


@pytest.fixture(scope="module")
def smol(smollm2):
    """The transformers backend on SmolLM2, at most 8 rows a batch; one per test module, so its caches are the
    module's own."""
    from selfexplain.backends.hf import HFBackend

    return HFBackend.from_loaded(*smollm2, max_batch_size=8)
