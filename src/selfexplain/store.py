"""Run folders: configuration-addressed, append-only, resumable.

A run lives in ``<output_path>/<prefix>-<hash>/`` where ``hash`` is the sha256
of the canonical JSON of its full configuration (model identity included), so
the same command always lands in the same folder and different settings never
share one.  ``config.json`` is written first; records are appended one chunk
at a time (all lines of a chunk in one write, then fsync).  A chunk whose lines
are not all present (the process was killed mid-write) is cut off when the run
is reopened, and the run continues from the first missing chunk, so a resumed
run ends with exactly the records of an uninterrupted one.

One process at a time writes a run folder: ``RunStore.open`` takes the
folder's lock (:mod:`selfexplain.locks`) and the store releases it when closed
(use it as a context manager).  A full disk while appending cuts the file back
to its complete chunks and says so in one line; a damaged ``config.json`` is
named with the position of the damage.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import UserError
from .locks import folder_lock

# What a full disk (or a quota, or a file-size limit) looks like to a writer.
DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


# A folder the user cannot write: a read-only file system or mount, permissions, a folder removed meanwhile.
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR})


class DiskFull(UserError):
    """A write failed for lack of space; the message says what was kept."""


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in DISK_FULL


RUNTIME = "runtime"


def config_hash(config: dict[str, Any]) -> str:
    """The run id's digest: every key but ``runtime`` (how the run was computed, not what)."""
    config = {k: v for k, v in config.items() if k != RUNTIME}
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ComputeClock:
    """The seconds a run folder has cost, summed over every process that added to it (``compute.json``).

    A run resumed after a kill, or continued in a later sitting, is timed as a whole: each process adds its
    time up to its last saved piece of work (what a kill loses after that is computed again, and counted
    again).  Study stage times come from here, so a stage that spans sittings is not reported as its last one.
    """

    FILE = "compute.json"

    def __init__(self, folder: Path):
        self.path = folder / self.FILE
        recorded = _read_clock(folder)
        self.before, self.processes = float(recorded.get("seconds") or 0.0), int(recorded.get("processes") or 0)
        self.started = time.monotonic()
        self.saved = False

    def save(self) -> None:
        """Record the time up to now (after each saved piece of work)."""
        seconds = round(self.before + time.monotonic() - self.started, 1)
        atomic_write(
            self.path,
            json.dumps({"seconds": seconds, "processes": self.processes + 1}) + "\n",
            kept="the records are complete and kept",
        )
        self.saved = True


def _read_clock(folder: str | Path) -> dict[str, Any]:
    """``compute.json`` of a run folder; a missing or damaged one reads as empty (results never depend on it)."""
    try:
        recorded = json.loads((Path(folder) / ComputeClock.FILE).read_text(encoding="utf-8"))
        float(recorded.get("seconds") or 0), int(recorded.get("processes") or 0)
        return recorded
    except (ValueError, OSError, AttributeError, TypeError):
        return {}


def compute_seconds(folder: str | Path) -> float | None:
    """The compute seconds recorded in a run folder's ``compute.json`` (None without a readable one)."""
    seconds = _read_clock(folder).get("seconds")
    return None if seconds is None else float(seconds)


class RunStore:
    RECORDS = "records.jsonl"
    CONFIG = "config.json"

    def __init__(self, path: Path, config: dict[str, Any], lock: ExitStack | None = None):
        self.path = path
        self.config = config
        self._lock = lock or ExitStack()
        self.clock = ComputeClock(path)

    @classmethod
    def open(
        cls,
        output_path: str | Path,
        prefix: str,
        config: dict[str, Any],
        wait: bool = False,
        runtime: dict[str, Any] | None = None,
    ) -> "RunStore":
        """The run folder of ``config``, locked for this process until :meth:`close`.

        ``runtime`` (device, batch sizes) joins a new ``config.json`` outside the hash: a run resumed on
        other hardware is the same run, and its file says how it was started.

        Held by another process: :class:`~selfexplain.locks.FolderBusy`, or with ``wait`` wait for it.
        """
        digest = config_hash(config)
        path = cls.folder(output_path, prefix, config)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{path}: cannot create run folder ({e.strerror})") from None
        lock = ExitStack()
        lock.enter_context(folder_lock(path, "this run folder", wait=wait))
        try:
            remove_stale_temporaries(path)
            cfg_file = path / cls.CONFIG
            if cfg_file.exists():
                if config_hash(read_json(cfg_file)) != digest:
                    raise UserError(
                        f"{path}: holds a run of a different configuration; remove it or choose another --output-path"
                    )
            else:
                written = {**config, RUNTIME: runtime} if runtime else config
                atomic_write(
                    cfg_file,
                    json.dumps(written, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    kept="nothing was computed yet",
                )
        except BaseException:
            lock.close()
            raise
        return cls(path, config, lock)

    @staticmethod
    def folder(output_path: str | Path, prefix: str, config: dict[str, Any]) -> Path:
        """Where the run of ``config`` lives (the same command always lands in the same folder)."""
        return Path(output_path) / f"{prefix}-{config_hash(config)[:12]}"

    def close(self) -> None:
        """Release the folder's lock (the store can still be read); a process that computed saves its time."""
        try:
            if self.clock.saved:
                self.clock.save()
        finally:
            self._lock.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def records_file(self) -> Path:
        return self.path / self.RECORDS

    def completed_chunks(self, chunk_sizes: dict[int, int]) -> set[int]:
        """Chunks whose records are all on disk; cuts off anything after the last one.

        ``chunk_sizes`` maps chunk index to its expected number of records.
        Chunks are written in order, so the file is a prefix of complete chunks
        followed, after a kill, by at most one partial chunk.
        """
        f = self.records_file
        if not f.exists():
            return set()
        done: set[int] = set()
        good_end = 0
        count: dict[int, int] = {}
        offset = 0
        with f.open("rb") as fh:
            for line in fh:
                offset += len(line)
                if not line.endswith(b"\n"):
                    break
                try:
                    chunk = json.loads(line)["chunk"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    break
                count[chunk] = count.get(chunk, 0) + 1
                if count[chunk] == chunk_sizes.get(chunk, -1):
                    done.add(chunk)
                    good_end = offset
        if good_end != f.stat().st_size:
            with f.open("r+b") as fh:
                fh.truncate(good_end)
        return done

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append one chunk's lines in one write; on a full disk, cut the file back to the chunks before it."""
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        with self.records_file.open("ab", buffering=0) as fh:
            start = os.fstat(fh.fileno()).st_size
            try:
                view = memoryview(data)
                while view:  # a write to a nearly full disk may be partial before it fails
                    view = view[fh.write(view) :]
                os.fsync(fh.fileno())
            except OSError as e:
                if not is_disk_full(e):
                    raise
                fh.truncate(start)
                chunks = len({r.get("chunk") for r in iter_records(self.path)})
                raise DiskFull(
                    f"{self.records_file}: disk full ({e.strerror}) while appending records; the "
                    f"{chunks} complete chunk(s) before it are kept; free space and run the same "
                    "command again to resume"
                ) from None
        self.clock.save()

    def process(
        self,
        parts: list[list[Any]],
        records_per_part: Callable[[list[Any]], int],
        compute: Callable[[int, list[Any]], list[dict[str, Any]]],
        on_chunk: Callable[[int], None] | None = None,
        enough: Callable[[list[dict[str, Any]]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Compute every chunk not yet on disk (each record gets its ``chunk``), return all records.

        With ``enough``, chunks are taken in order only until ``enough(records so far)`` holds,
        so the records are always the same prefix whether or not the run was interrupted.
        """
        done = self.completed_chunks({c: records_per_part(p) for c, p in enumerate(parts)})
        stored: dict[int, list[dict[str, Any]]] = {}
        if enough is not None:
            for r in self.records():
                stored.setdefault(r["chunk"], []).append(r)
        so_far: list[dict[str, Any]] = []
        for c, part in enumerate(parts):
            if enough is not None and enough(so_far):
                break
            if c in done:
                records = stored.get(c, [])
            else:
                records = compute(c, part)
                for r in records:
                    r["chunk"] = c
                self.append(records)
            so_far += records
            if on_chunk:
                on_chunk(len(part))
        return list(self.records())

    def records(self) -> Iterator[dict[str, Any]]:
        yield from iter_records(self.path)

    def write_json(self, name: str, obj: Any) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")

    def write_text(self, name: str, text: str) -> Path:
        p = self.path / name
        atomic_write(p, text, kept="the records are complete and kept")
        return p


def iter_records(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The complete lines of a run folder's records.jsonl (a line cut by a kill is not a record)."""
    path = Path(run_dir) / RunStore.RECORDS
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        for number, line in enumerate(fh, 1):
            if not line.endswith("\n"):
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(
                    f"{path}: line {number} is not a valid record ({e.msg}, column {e.colno}); "
                    "running the command that wrote it again repairs the file"
                ) from None


_UMASK = os.umask(0)  # read once, at import (single-threaded): os.umask can only be read by setting it
os.umask(_UMASK)


def atomic_write(path: str | Path, text: str | bytes, kept: str = "nothing was lost") -> None:
    """Write through a temporary file and rename, so a reader sees the old file or the new one.

    The temporary file has a unique name in the same folder (two writers never share one), its data
    reaches the disk before the rename, and the folder's entry after it, so a crash of the machine
    leaves the old file or the whole new one.  A full disk raises :class:`DiskFull` saying ``kept``
    (what survives) and that the same command resumes.
    """
    path = Path(path)
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        # mkstemp makes the file private (0600); the file it replaces keeps its mode, a new one gets what
        # open() would give it, so others sharing a study folder can read what it holds.
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(path.parent)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if e.errno in UNWRITABLE:
            raise UserError(
                f"{path}: cannot write ({e.strerror or os.strerror(e.errno)}); {kept}; make the folder "
                "writable (or choose another --output-path) and run the same command again"
            ) from None
        if not is_disk_full(e):
            raise
        raise DiskFull(disk_full_message(e, path, kept)) from None


def remove_stale_temporaries(folder: Path) -> None:
    """Remove what :func:`atomic_write`s killed mid-write left; call only while holding the folder's lock."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_full_message(e: OSError, path: str | Path | None, kept: str) -> str:
    where = f"{path}: " if path else ""
    return (
        f"{where}disk full ({e.strerror or os.strerror(e.errno or 0)}); {kept}; "
        "free space and run the same command again to resume"
    )


def read_json(path: str | Path) -> Any:
    """A JSON file written by selfexplain; a damaged one is one error line naming the file and the position."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); restore it, "
            "or remove the folder to compute it again"
        ) from None
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path}: not valid JSON (byte {e.start} is not UTF-8); restore it, "
            "or remove the folder to compute it again"
        ) from None


def check_output_path(output_path: str | Path) -> None:
    """An output folder that exists or can be made, and can be written (checked before any model loads)."""
    path = Path(output_path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: --output-path names a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{path}: cannot create the output folder ({e.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{path}: the output folder is not writable")
