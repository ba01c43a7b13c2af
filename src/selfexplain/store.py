"""Run folders: configuration-addressed, append-only, resumable.

A run lives in ``<output_path>/<prefix>-<hash>/`` where ``hash`` is the sha256
of the canonical JSON of its full configuration (model identity included), so
the same command always lands in the same folder and different settings never
share one.  ``config.json`` is written first; records are appended one chunk
at a time (all lines of a chunk in one write, then fsync).  A chunk whose lines
are not all present (the process was killed mid-write) is cut off when the run
is reopened, and the run continues from the first missing chunk, so a resumed
run ends with exactly the records of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import UserError


def config_hash(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class RunStore:
    RECORDS = "records.jsonl"
    CONFIG = "config.json"

    def __init__(self, path: Path, config: dict[str, Any]):
        self.path = path
        self.config = config

    @classmethod
    def open(cls, output_path: str | Path, prefix: str, config: dict[str, Any]) -> "RunStore":
        digest = config_hash(config)
        path = Path(output_path) / f"{prefix}-{digest[:12]}"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{path}: cannot create run folder ({e.strerror})") from None
        cfg_file = path / cls.CONFIG
        if cfg_file.exists():
            saved = json.loads(cfg_file.read_text())
            if config_hash(saved) != digest:
                raise UserError(f"{path}: holds a run of a different configuration; remove it or choose another --output-path")
        else:
            atomic_write(cfg_file, json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return cls(path, config)

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
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with self.records_file.open("a", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

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
        p = self.path / name
        atomic_write(p, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return p

    def write_text(self, name: str, text: str) -> Path:
        p = self.path / name
        atomic_write(p, text)
        return p


def iter_records(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The complete lines of a run folder's records.jsonl (a line cut by a kill is not a record)."""
    path = Path(run_dir) / RunStore.RECORDS
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.endswith("\n"):
                yield json.loads(line)


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
