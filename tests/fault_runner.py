"""Run the real ``selfexplain`` CLI in a process of its own, with one fault injected at an exact point.

    python tests/fault_runner.py FAULT[:N] -- evaluate --limit 6 ...     # by hand
    proc = start(["evaluate", "--limit", "6", ...], fault="kill-after-append:2")   # from a test

``start`` forks the process from a warm server (``multiprocessing``'s forkserver, with torch, transformers and
peft imported once per test session): a fresh interpreter spends about 4 s of a 5 s tiny-model run importing
them, and the fault tests start some thirty such processes.  Each run is still a process of its own, with
its own pid, environment, file descriptors and exit status; the server only imports, it never computes, so
no thread pool exists to be forked.

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

import io
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
from pathlib import Path

# What a CLI run imports before its first step, imported once by the server that forks every run.
# Not selfexplain.cli: its console is made at import, and each run makes its own after its output is redirected.
PRELOAD = ["torch", "transformers", "transformers.models.auto.modeling_auto", "transformers.models.auto.tokenization_auto",
           "transformers.models.llama.modeling_llama", "transformers.trainer", "peft", "safetensors.torch",
           "accelerate", "scipy.stats", "yaml", "pydantic", "jinja2", "openai", "httpx",  # a missing one is skipped
           "selfexplain.api", "selfexplain.experiments", "selfexplain.reports", "selfexplain.reports.figures"]


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


def resolved_path(spec: str) -> str:
    """The converted folder of a model (``target="fault_runner:resolved_path"``: a conversion in a process)."""
    from selfexplain.models import resolve_model

    return resolve_model(spec).load_path


def resolved_embedded(gguf: str) -> str:
    """The converted folder of ``gguf`` served as the embedded model ``tiny`` (the file as the one part of a
    package of its own): the embedded path, joining then converting, at a tiny model's cost."""
    from selfexplain import models

    part = ("tiny_gguf", Path(gguf).name)
    models.EMBEDDED["tiny"] = models.EmbeddedModel("tiny", "a test's tiny GGUF", (part,), None)
    models.catalogue.package_dir = lambda name: Path(gguf).parent if name == "tiny_gguf" else None
    return models.resolve_model("embedded:tiny").load_path


def vllm_serve(*argv: str) -> None:
    """``python -m vllm.entrypoints.openai.api_server ARGV`` (``target="fault_runner:vllm_serve"``): forked with
    torch and transformers already imported, it is up 4 s sooner than from a fresh interpreter."""
    from vllm.entrypoints.launchers.api_server.entry import main

    sys.argv = ["vllm.entrypoints.openai.api_server", *argv]
    main()


def _context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # ignored once the server runs: one server per test session
    return ctx


def _child(target: str, args: list, fault: str | None, env: dict, out: str, err: str) -> None:
    """The forked process: the given environment and output files, the fault, then the CLI (or ``target``)."""
    import gc

    # The preloaded libraries' objects live as long as the process: out of the collector's way (a study collects
    # after each stage, 0.2 s a time over them), as tests/conftest.py does for the test process.
    gc.freeze()
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_APPEND), fd)
    # As PYTHONUNBUFFERED: what a process wrote before its SIGKILL is in the file.
    sys.stdout = io.TextIOWrapper(open(1, "wb", buffering=0, closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(open(2, "wb", buffering=0, closefd=False), write_through=True,
                                  errors="backslashreplace")
    if fault:
        install(fault)
    if target == "cli":
        from selfexplain.cli import app

        sys.argv = ["selfexplain", *args]
        app()
    else:
        module, _, name = target.partition(":")
        print(getattr(__import__(module, fromlist=[name]), name)(*args))


class Proc:
    """A started run, shaped like ``subprocess.Popen`` (``pid``, ``poll``, ``communicate``, ``kill``) and, once
    finished, like ``CompletedProcess`` (``returncode``, ``stdout``, ``stderr``; -9 for a SIGKILL)."""

    def __init__(self, target: str, args: list, fault: str | None, env: dict | None):
        self._dir = tempfile.mkdtemp(prefix="cli-")
        self.stdout_path, self.stderr_path = Path(self._dir, "stdout"), Path(self._dir, "stderr")
        for path in (self.stdout_path, self.stderr_path):  # readable while the run has not opened them yet
            path.touch()
        self._process = _context().Process(target=_child, args=(
            target, [str(a) for a in args], fault, dict(os.environ if env is None else env),
            str(self.stdout_path), str(self.stderr_path)))
        self._process.start()
        self.pid = self._process.pid
        self.returncode: int | None = None
        self.stdout = self.stderr = ""

    def poll(self) -> int | None:
        if self.returncode is None and not self._process.is_alive():
            self._process.join()
            self.returncode = self._process.exitcode
        return self.returncode

    def communicate(self, timeout: float = 600) -> tuple[str, str]:
        self._process.join(timeout)
        if self._process.is_alive():
            self.kill()
            raise TimeoutError(f"the run (pid {self.pid}) took over {timeout} s: killed")
        self.poll()
        self.stdout = self.stdout_path.read_text(errors="replace")
        self.stderr = self.stderr_path.read_text(errors="replace")
        shutil.rmtree(self._dir, ignore_errors=True)
        return self.stdout, self.stderr

    def kill(self) -> None:
        self._process.kill()

    def terminate(self) -> None:
        self._process.terminate()

    def wait(self, timeout: float | None = None) -> int | None:
        self._process.join(timeout)
        if self._process.is_alive():
            raise TimeoutError(f"the run (pid {self.pid}) is still running after {timeout} s")
        return self.poll()


def start(args: list, fault: str | None = None, env: dict | None = None, target: str = "cli") -> Proc:
    """``selfexplain ARGS`` in a process of its own (or ``module:function(*args)``, its result printed)."""
    return Proc(target, args, fault, env)


def run(args: list, fault: str | None = None, env: dict | None = None, target: str = "cli",
        timeout: float = 600) -> Proc:
    """``start``, then wait for it to end (its output read)."""
    proc = start(args, fault, env, target)
    proc.communicate(timeout)
    return proc


if __name__ == "__main__":
    fault, sep, *args = sys.argv[1:]
    assert sep == "--"
    install(fault)
    from selfexplain.cli import app

    sys.argv = ["selfexplain", *args]
    app()
