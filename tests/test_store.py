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


def _write_many(target, text, n):
    from selfexplain.store import atomic_write

    for _ in range(n):
        atomic_write(target, text)


def test_atomic_writes_of_two_writers_never_share_a_temporary_file(tmp_path):
    """It wrote NAME.tmp: a second process truncated the first's temporary file or renamed it away."""
    import multiprocessing

    target = tmp_path / "summary.json"
    texts = [f'{{"writer": {w}, "pad": "' + "x" * 500_000 + '"}\n' for w in (1, 2)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(target, t, 80)) for t in texts]
    for p in procs:
        p.start()
    seen = set()
    while any(p.is_alive() for p in procs):
        if target.exists():
            seen.add(target.read_text() in texts)
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    assert seen <= {True} and target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_write_syncs_data_before_the_rename(tmp_path, monkeypatch):
    import os

    from selfexplain.store import atomic_write

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    atomic_write(tmp_path / "a.json", "{}\n")
    assert calls == ["fsync", "replace", "fsync"]  # the file's data, the rename, the folder's entry


def test_opening_a_run_folder_removes_what_a_killed_write_left(tmp_path):
    from selfexplain.store import RunStore

    with RunStore.open(tmp_path, "run", {"a": 1}) as store:
        pass
    (store.path / ".summary.json.k2j3.tmp").write_text("{half")
    with RunStore.open(tmp_path, "run", {"a": 1}):
        assert not list(store.path.glob("*.tmp"))


def test_a_read_only_run_folder_is_one_line(tmp_path, monkeypatch):
    """A summary written on a read-only file system in an existing run folder gave a traceback."""
    import errno
    import tempfile

    from selfexplain.store import atomic_write

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(UserError) as e:
        atomic_write(tmp_path / "summary.json", "{}", kept="the records are complete and kept")
    assert str(e.value) == (f"{tmp_path / 'summary.json'}: cannot write (Read-only file system); the records are "
                            "complete and kept; make the folder writable (or choose another --output-path) and run "
                            "the same command again")
