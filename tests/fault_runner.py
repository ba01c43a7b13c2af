"""Run the real ``selfexplain`` CLI in this process with one fault injected at an exact point.

    python tests/fault_runner.py FAULT[:N] -- evaluate --limit 6 ...

The fault is a real ``SIGKILL`` of this process (no cleanup, no ``finally``: the kernel releases its
locks), or a real file-size limit (``RLIMIT_FSIZE``; Python ignores ``SIGXFSZ``, so writes past it
fail with ``EFBIG`` as on a full disk).  Only the moment is arranged, by wrapping a function:

* ``kill-after-append:N``   after the N-th chunk of records is on disk (between chunks)
* ``kill-mid-append:N``     half-way through writing the N-th chunk's bytes
* ``stall-after-append:N:S``  sleep S seconds after the N-th chunk (holding the run folder meanwhile); S may
  instead be a file's path: hold until that file exists (at most 300 s), so a test releases it when ready
* ``kill-writing:NAME``     with NAME's temporary file written, before it replaces NAME (summary.json ...)
* ``kill-after-checkpoint:N``  right after training checkpoint N is saved
* ``kill-mid-checkpoint:N``    during checkpoint N's save (its weights written, its trainer state not)
* ``kill-stage:KEY``        as the reproduce stage KEY (a prefix such as ``train|``) finishes its work
* ``fsize:BYTES``           no file may grow beyond BYTES
"""

import os
import resource
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(fault: str) -> None:
    kind, _, arg = fault.partition(":")
    if kind == "fsize":
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(arg), int(arg)))
        return
    if kind in ("kill-after-append", "kill-mid-append", "stall-after-append"):
        import time

        from selfexplain import store

        original = store.RunStore.append
        calls = [0]
        arg, _, stall = arg.partition(":")

        def append(self, records):
            calls[0] += 1
            if calls[0] == int(arg) and stall:
                original(self, records)
                if stall.replace(".", "", 1).isdigit():
                    time.sleep(float(stall))
                    return
                deadline = time.time() + 300
                while not os.path.exists(stall) and time.time() < deadline:
                    time.sleep(0.1)
                return
            if calls[0] == int(arg):
                if kind == "kill-mid-append":
                    import json

                    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
                    with self.records_file.open("ab") as fh:
                        fh.write(data[: len(data) // 2])
                    _die()
                original(self, records)
                _die()
            original(self, records)

        store.RunStore.append = append
    elif kind == "kill-writing":
        from pathlib import Path

        from selfexplain import store

        original_write = store.atomic_write

        def atomic_write(path, text, kept="nothing was lost"):
            if Path(path).name == arg:  # half of it in atomic_write's temporary file, then die
                import tempfile

                fd, _ = tempfile.mkstemp(dir=Path(path).parent, prefix=f".{Path(path).name}.", suffix=".tmp")
                os.write(fd, (text[: len(text) // 2] if isinstance(text, str) else "").encode())
                _die()
            original_write(path, text, kept)

        store.atomic_write = atomic_write
    elif kind in ("kill-after-checkpoint", "kill-mid-checkpoint"):
        from transformers import Trainer

        if kind == "kill-after-checkpoint":
            original_save = Trainer._save_checkpoint

            def save(self, *a, **k):
                original_save(self, *a, **k)
                if self.state.global_step == int(arg):
                    _die()

            Trainer._save_checkpoint = save
        else:
            original_rng = Trainer._save_rng_state

            def save_rng(self, output_dir):  # weights and optimizer are written; trainer_state.json is not
                if self.state.global_step == int(arg):
                    _die()
                original_rng(self, output_dir)

            Trainer._save_rng_state = save_rng
    elif kind == "kill-stage":
        from selfexplain import experiments

        original_stage = experiments.Study.stage

        def stage(self, key, fn):
            if key.startswith(arg):
                fn()
                _die()
            return original_stage(self, key, fn)

        experiments.Study.stage = stage
    else:
        raise SystemExit(f"unknown fault {fault!r}")


if __name__ == "__main__":
    fault, sep, *args = sys.argv[1:]
    assert sep == "--"
    install(fault)
    from selfexplain.cli import app

    sys.argv = ["selfexplain", *args]
    app()
