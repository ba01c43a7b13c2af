"""Run folders: addressing by configuration, partial-chunk recovery."""

import json

import pytest

from selfexplain.errors import UserError
from selfexplain.store import RunStore, config_hash


def test_hash_is_order_independent_and_sensitive():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_partial_chunk_is_cut_and_redone(tmp_path):
    store = RunStore.open(tmp_path, "run", {"x": 1})
    store.append([{"chunk": 0, "i": 0}, {"chunk": 0, "i": 1}])
    store.append([{"chunk": 1, "i": 0}, {"chunk": 1, "i": 1}])
    with store.records_file.open("a") as f:  # a kill in the middle of chunk 2
        f.write(json.dumps({"chunk": 2, "i": 0}) + "\n" + '{"chunk": 2, "i"')
    sizes = {0: 2, 1: 2, 2: 2}
    assert store.completed_chunks(sizes) == {0, 1}
    assert [r["chunk"] for r in store.records()] == [0, 0, 1, 1]
    store.append([{"chunk": 2, "i": 0}, {"chunk": 2, "i": 1}])
    assert store.completed_chunks(sizes) == {0, 1, 2}


def test_foreign_config_in_folder_is_refused(tmp_path):
    store = RunStore.open(tmp_path, "run", {"x": 1})
    (store.path / "config.json").write_text(json.dumps({"x": 2}))
    with pytest.raises(UserError, match="different configuration"):
        RunStore.open(tmp_path, "run", {"x": 1})
