"""Folder locks, with real processes: exclusive, named holder, gone with a kill -9, safe to remove on release."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from selfexplain.errors import UserError
from selfexplain.locks import FolderBusy, folder_lock
from selfexplain.store import RunStore


def _holder(folder, seconds=60):
    """A child process that takes the lock, says so, and sleeps."""
    code = textwrap.dedent(f"""
        import sys, time
        from selfexplain.locks import folder_lock
        with folder_lock({str(folder)!r}, "test folder"):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_is_told_who_holds_the_folder(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(FolderBusy) as e:
            with folder_lock(tmp_path, "test folder"):
                pass
        assert f"pid {proc.pid}" in str(e.value) and str(tmp_path) in str(e.value)
        assert e.value.exit_code == 75
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_leaves_no_lock_behind(tmp_path):
    proc = _holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / ".lock").exists()  # the file stays, the lock does not
    with folder_lock(tmp_path, "test folder"):
        pass
    assert not (tmp_path / ".lock").exists()


def test_wait_waits_for_the_holder(tmp_path):
    proc = _holder(tmp_path, seconds=2)
    heard = []
    start = time.time()
    with folder_lock(tmp_path, "test folder", wait=True, on_wait=heard.append):
        waited = time.time() - start
    assert waited >= 1 and len(heard) == 1 and f"pid {proc.pid}" in heard[0]
    proc.wait()


def test_reentrant_in_one_process(tmp_path):
    with folder_lock(tmp_path, "outer"):
        with folder_lock(tmp_path, "inner"):
            pass
        assert (tmp_path / ".lock").exists()  # still held by the outer one
    assert not (tmp_path / ".lock").exists()


def test_no_two_holders_under_contention(tmp_path):
    """Four processes each increment a counter 40 times under the lock; removal of the lock file on
    release must never let two of them in at once (a lost update would show)."""
    counter = tmp_path / "counter"
    counter.write_text("0")
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from selfexplain.locks import folder_lock
        import selfexplain.locks as L
        L.POLL_S = 0.001
        c = Path({str(counter)!r})
        for _ in range(40):
            with folder_lock({str(tmp_path)!r}, "counter", wait=True, on_wait=lambda m: None):
                n = int(c.read_text())
                time.sleep(0.0005)
                c.write_text(str(n + 1))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert counter.read_text() == "160"


def test_run_store_is_locked_while_open(tmp_path):
    code = textwrap.dedent(f"""
        import time
        from selfexplain.store import RunStore
        with RunStore.open({str(tmp_path)!r}, "evaluate-x", {{"a": 1}}) as s:
            print(s.path, flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        with pytest.raises(FolderBusy, match="this run folder is in use by pid"):
            RunStore.open(tmp_path, "evaluate-x", {"a": 1})
        RunStore.open(tmp_path, "evaluate-x", {"a": 2}).close()  # another configuration: another folder
    finally:
        proc.kill()
        proc.wait()
    with RunStore.open(tmp_path, "evaluate-x", {"a": 1}) as s:
        assert str(s.path) == path


def test_damaged_config_is_one_line_with_position(tmp_path):
    with RunStore.open(tmp_path, "evaluate-x", {"a": 1}) as s:
        pass
    (s.path / "config.json").write_text('{"a": 1,,}\n')
    with pytest.raises(UserError) as e:
        RunStore.open(tmp_path, "evaluate-x", {"a": 1})
    msg = str(e.value)
    assert msg.startswith(f"{s.path / 'config.json'}: not valid JSON (line 1, column 9")
    # ... and the failed open released its lock
    with folder_lock(s.path, "x"):
        pass


def test_lock_file_removed_after_use(tmp_path):
    with RunStore.open(tmp_path, "p", {"a": 1}) as s:
        assert (s.path / ".lock").read_text().startswith(f"pid {os.getpid()} ")
    assert sorted(p.name for p in s.path.iterdir()) == ["config.json"]
