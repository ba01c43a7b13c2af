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


def test_compute_time_sums_every_process_that_worked_on_a_run(tmp_path, monkeypatch):
    """A stage killed and continued in a later sitting was timed as its last process only."""
    import selfexplain.store as store_module

    now = [100.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: now[0])
    store = RunStore.open(tmp_path, "run", {"x": 1})
    now[0] += 30
    store.append([{"chunk": 0}])
    now[0] += 50  # killed here: work after the last saved chunk is not counted (it is computed again)
    assert store_module.compute_seconds(store.path) == 30
    store._lock.close()
    again = RunStore.open(tmp_path, "run", {"x": 1})
    now[0] += 20
    again.append([{"chunk": 1}])
    now[0] += 5  # the summary, after the last chunk
    again.close()
    assert json.loads((again.path / "compute.json").read_text()) == {"seconds": 55, "processes": 2}
    cached = RunStore.open(tmp_path, "run", {"x": 1})  # a complete run opened and closed: nothing computed
    now[0] += 7
    cached.close()
    assert store_module.compute_seconds(again.path) == 55
    (again.path / "compute.json").write_text("{damaged")
    assert store_module.compute_seconds(again.path) is None and RunStore.open(tmp_path, "run", {"x": 1}).clock.before == 0


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


# ---- property-based: what a damaged records file reads as ----------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st

from strategies import VALUES  # noqa: E402

_records = st.lists(st.dictionaries(st.text(max_size=6), VALUES, max_size=4), min_size=1, max_size=6)


def _write(tmp_path, records) -> tuple:
    import uuid

    run = tmp_path / uuid.uuid4().hex
    run.mkdir()
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    return run, data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records, cut=st.floats(0, 1))
def test_a_truncated_records_file_reads_as_its_exact_prefix_and_says_so(tmp_path, records, cut):
    from selfexplain.layout import run_status
    from selfexplain.store import iter_records

    run, data = _write(tmp_path, records)
    k = int(len(data) * cut)
    (run / "records.jsonl").write_bytes(data[:k])
    complete = data[:k].count(b"\n")
    assert list(iter_records(run)) == records[:complete]
    status = run_status(run)
    assert status.held == complete and status.torn == (k > 0 and not data[:k].endswith(b"\n"))
    assert not status.complete


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records, where=st.floats(0, 1), byte=st.integers(0, 255))
def test_a_corrupted_byte_gives_the_records_before_it_or_one_error_line(tmp_path, records, where, byte):
    """Lines before the damaged one are always read exactly; the damage is either an error naming the file and
    a line at or after it, or (a byte that keeps the line valid JSON) a changed record from that line on."""
    from selfexplain.store import iter_records

    run, data = _write(tmp_path, records)
    i = min(int(len(data) * where), len(data) - 1)
    damaged = data[:i] + bytes([byte]) + data[i + 1:]
    (run / "records.jsonl").write_bytes(damaged)
    line = data[:i].count(b"\n")  # index of the damaged line
    try:
        got = list(iter_records(run))
    except UserError as e:
        message = str(e)
        assert "\n" not in message and message.startswith(str(run / "records.jsonl"))
        assert int(message.split(": line ")[1].split()[0]) >= line + 1
    else:
        assert got[:line] == records[:line]


def test_atomic_writes_are_readable_as_open_would_make_them(tmp_path, monkeypatch):
    """mkstemp's temporary files are 0600: every summary and config became private to the writer."""
    import os

    import selfexplain.store as store

    monkeypatch.setattr(store, "_UMASK", 0o022)  # the process's umask, read at import
    store.atomic_write(tmp_path / "new.json", "{}")
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644
    (tmp_path / "shared.json").write_text("{}")
    os.chmod(tmp_path / "shared.json", 0o664)
    store.atomic_write(tmp_path / "shared.json", "{}\n")  # a replaced file keeps its mode
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o664
