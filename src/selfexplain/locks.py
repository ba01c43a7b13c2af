"""One writer per folder: exclusive locks that a dead process cannot leave behind.

Every folder a command writes (a run folder, a study, a training run, a cache
entry) is held through ``folder_lock`` for as long as the command writes it.
The lock is ``fcntl.flock`` on a lock file: the kernel drops it when the
process ends in any way, ``kill -9`` included, so there are no stale locks to
clean up.  The holder writes its PID and command line into the lock file, so a
second process can say who holds the folder.  The file is removed on release
(a taker checks after locking that the file it locked is still the one at the
path, so removal cannot let two processes in); after a ``kill -9`` it stays,
unlocked and harmless.

Locks are re-entrant within a process: a study that holds its folder can open
run folders inside it, and code that opens the same run twice does not lock
itself out.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import UserError

LOCK_NAME = ".lock"
POLL_S = 0.5


class FolderBusy(UserError):
    """Another live process holds the folder."""

    exit_code = 75  # EX_TEMPFAIL: the same command can succeed later


_held: dict[str, list[int]] = {}  # lock file -> [fd, depth] held by this process


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process (it has not written its PID yet)"


def _try_lock(path: Path) -> int | None:
    """An fd holding the lock on ``path``, or None if another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed the file as we opened it: lock the new one


@contextmanager
def folder_lock(
    folder: str | Path,
    what: str,
    wait: bool = False,
    lock_file: str | Path | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold ``folder`` exclusively (``lock_file`` defaults to ``folder/.lock``).

    Busy: with ``wait`` poll until it is free (``on_wait`` hears once who holds it), otherwise raise
    :class:`FolderBusy` naming the folder and the holder.
    """
    path = Path(lock_file) if lock_file else Path(folder) / LOCK_NAME
    key = os.path.abspath(path)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _try_lock(path)
    told = False
    while fd is None:
        who = _holder(path)
        if not wait:
            raise FolderBusy(
                f"{folder}: {what} is in use by {who}; wait for it to finish "
                "(or pass --wait), or use another --output-path"
            )
        if not told:
            (on_wait or _tell)(f"{folder}: {what} is in use by {who}; waiting for it")
            told = True
        time.sleep(POLL_S)
        fd = _try_lock(path)
    _held[key] = [fd, 1]
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} ({' '.join(sys.argv)[:300]})\n".encode("utf-8", "replace"))
        yield
    finally:
        del _held[key]
        try:
            os.unlink(path)  # while still locked: a waiter that opened it re-checks the inode
        except OSError:
            pass
        os.close(fd)


def cache_entry_lock(target: str | Path, what: str):
    """Held while one cache entry (a file or folder replaced as a whole) is built; another process that
    needs it waits, then finds it built.  The lock file sits beside the entry, which is renamed into place."""
    target = Path(target)
    return folder_lock(target.parent, what, wait=True, lock_file=target.parent / f".{target.name}.lock")


def _tell(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
