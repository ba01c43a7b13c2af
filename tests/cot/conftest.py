"""The scripted stand-in models (:mod:`cot_scripted`) as fixtures."""

import pytest
from cot_scripted import HelperBackend, ReasoningBackend


@pytest.fixture
def reasoning_backend():
    return ReasoningBackend()


@pytest.fixture
def helper_backend():
    return HelperBackend()
