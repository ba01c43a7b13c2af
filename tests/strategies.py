"""Hypothesis strategies and checks shared by the readers' property-based tests."""

from pathlib import Path
from typing import Any, Callable

import yaml
from hypothesis import strategies as st

from selfexplain.errors import UserError

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
# What a YAML or JSON file a user wrote can hold: scalars, lists and mappings, nested.
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def loads_or_one_line(load: Callable[[Path], Any], path: Path, mapping: dict, kind: type) -> None:
    """Write ``mapping`` as YAML to ``path``: ``load`` gives a ``kind``, or one error line naming the file."""
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    try:
        assert isinstance(load(path), kind)
    except UserError as e:
        assert "\n" not in str(e) and str(path) in str(e)
