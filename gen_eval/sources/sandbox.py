"""Run a submitted ``file.py:factory`` generator in a separate process that the kernel confines.

The grader's process never imports submitted code. A worker process
(:mod:`gen_eval.sources.sandbox_worker`, run with ``python -I -B -m``) confines itself
(:mod:`gen_eval.sources.confinement`: Landlock and seccomp), imports the file and serves
``sample(n, generator)`` calls over pipes:

- the parent sends n, the requested classes of a class-conditional model (an int64 ``.npy``
  array, checked by the worker against the ``num_classes`` it declared) and its
  ``torch.Generator`` state; the worker samples with a generator in
  that state and returns the samples as an ``.npy`` payload (read with ``allow_pickle=False``) and
  the generator's new state, which the parent adopts, so samples are bit-identical to calling the
  model in-process with the same seed;
- what the worker may reach: read its own folder and the Python installation, write one private
  temporary folder (its ``HOME`` and ``TMPDIR``, deleted afterwards), no sockets, no new
  processes, signals only to itself, an environment built from an allow-list;
- lifetime: the worker leads its own session, dies with the grader (``PR_SET_PDEATHSIG``) and is
  killed with its process group when the model is closed, a call times out or the grader exits;
- limits: address space (``RLIMIT_AS``; torch alone reserves about 3 GiB, so the default is
  8 GiB), CPU time, no core dumps, 1 GiB per written file, and a wall-clock limit per call that
  covers the whole reply; a reply may not declare more bytes than the request can need (n x the
  first batch's per-sample size at 8 bytes a value) and is refused before anything is allocated.

Where the kernel lacks Landlock or seccomp filters, the sandbox refuses to start, naming what is
missing, unless ``isolation=False`` (``--unsafe-no-isolation``): then only the limits and an
audit hook (not a boundary) apply. Limits can be set with ``GEN_EVAL_SANDBOX_TIME_S`` (per call,
default 600) and ``GEN_EVAL_SANDBOX_MEMORY_MB`` (default 8192).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.sources.confinement import missing_features
from gen_eval.sources.sandbox_worker import HEADER, MAX_MESSAGE, one_line, worker_environment

FIRST_SAMPLE_BYTES = 3 * 1024 * 1024 * 8  # before a first reply: one 3 x 1024 x 1024 float64 sample
_SLACK = 64 * 1024  # .npy header, lengths and the generator state (5 KiB for torch's CPU generator)
_LIVE: weakref.WeakSet = weakref.WeakSet()
AUDIT_HOOK = True  # tests turn it off to show that the kernel alone holds


def _limits() -> tuple[float, int]:
    time_s = float(os.environ.get("GEN_EVAL_SANDBOX_TIME_S", "600"))
    memory_mb = int(os.environ.get("GEN_EVAL_SANDBOX_MEMORY_MB", "8192"))
    return time_s, memory_mb


@atexit.register
def _close_all() -> None:
    for model in list(_LIVE):
        model.close()


@dataclass(eq=False)
class SandboxedModel:
    """Stands in for the submitted model in the grader's process: only ``sample`` is offered."""

    spec: str
    path: Path
    factory: str
    time_limit: float
    memory_mb: int
    isolation: bool = True
    _process: subprocess.Popen | None = None
    _temp: str | None = None
    _item_bytes: int = field(default=FIRST_SAMPLE_BYTES, repr=False)

    def start(self) -> None:
        cpu = int(self.time_limit * 4) + 60
        self._temp = tempfile.mkdtemp(prefix="gen-eval-worker-")
        mode = ("kernel" if self.isolation else "unconfined") + ("" if AUDIT_HOOK else "-no-hook")
        command = [sys.executable, "-I", "-B", "-m", "gen_eval.sources.sandbox_worker"]
        command += [str(self.path.resolve()), self.factory, self._temp, str(os.getpid()), mode]
        command += [str(self.memory_mb), str(cpu)]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.path.resolve().parent,
            env=worker_environment(Path(self._temp)),
            start_new_session=True,  # its own session and process group: killpg takes everything
            bufsize=0,
        )
        _LIVE.add(self)
        assert self._process.stdin is not None
        os.set_blocking(self._process.stdin.fileno(), False)  # writes honour the deadline too
        kind, payload = self._receive("loading the model", time.monotonic() + self.time_limit, 0)
        if kind != b"R":
            self.close()
            raise GenEvalError(one_line(payload.decode(errors="replace")))
        try:
            described = json.loads(payload.decode() or "{}")
            assert isinstance(described, dict)
        except (ValueError, AssertionError):
            self.close()
            raise GenEvalError(
                f"{self.spec}: the generator process sent a malformed greeting; stopped"
            ) from None
        for name in ("family", "dataset", "likelihood", "levels", "num_classes"):
            if isinstance(described.get(name), (str, int, float)):
                setattr(self, name, described[name])
        if described.get("log_prob") is True:
            self.log_prob = self._log_prob  # offered only when the model has one

    def _stop(self, message: str) -> GenEvalError:
        self.close()
        return GenEvalError(message)

    def _read(self, size: int, deadline: float, doing: str) -> bytes:
        """Read ``size`` bytes before ``deadline``; ``size`` is already bounded by the caller."""
        process = self._process
        assert process is not None and process.stdout is not None
        fd = process.stdout.fileno()
        data = bytearray(size)
        view, got = memoryview(data), 0
        while got < size:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise self._stop(
                    f"{self.spec}: {doing} took longer than {self.time_limit:g} s; stopped "
                    "(set GEN_EVAL_SANDBOX_TIME_S to allow more)"
                )
            count = process.stdout.readinto(view[got : got + (1 << 20)])
            if not count:
                raise self._ended(doing)
            got += count
        return bytes(data)

    def _ended(self, doing: str) -> GenEvalError:
        process = self._process
        assert process is not None
        try:
            code = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.close()
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (over its CPU-time limit)" if name == "SIGXCPU" else ""
            hint = " (a forbidden system call)" if name == "SIGSYS" else hint
            return GenEvalError(f"{self.spec}: the generator process crashed with {name}{hint} while {doing}")
        return GenEvalError(f"{self.spec}: the generator process exited (status {code}) while {doing}")

    def _receive(self, doing: str, deadline: float, reply_bound: int) -> tuple[bytes, bytes]:
        """One reply, read before ``deadline``; an ``O`` reply may declare at most ``reply_bound`` bytes."""
        kind, size = HEADER.unpack(self._read(HEADER.size, deadline, doing))
        bound = reply_bound if kind == b"O" else MAX_MESSAGE if kind in (b"R", b"E") else -1
        if size > bound:
            raise self._stop(
                f"{self.spec}: the generator process declared a {size}-byte reply to {doing}, more than "
                f"the {max(bound, 0)} bytes it can need; stopped (a forged or corrupted reply)"
            )
        return kind, self._read(size, deadline, doing)

    def _write(self, data: bytes, deadline: float, doing: str) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        fd, view = process.stdin.fileno(), memoryview(data)
        while view:
            _, ready, _ = select.select([], [fd], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise self._stop(f"{self.spec}: {doing} took longer than {self.time_limit:g} s; stopped")
            try:
                view = view[os.write(fd, view[: 1 << 16]) :]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise self._ended(doing) from None

    def sample(self, n: int, generator: Any = None, labels: Any = None) -> np.ndarray:
        bound = n * self._item_bytes + _SLACK
        # The requested classes travel as data (int64), never as pickled objects; none: an empty array.
        sent = np.zeros(0, np.uint8) if labels is None else np.asarray(labels, dtype=np.int64)
        out = self._call(b"S", struct.pack(">Q", n), sent, generator, f"sample({n})", bound)
        if out.ndim >= 1 and len(out) == n and n > 0:  # later replies: at most n of these samples
            self._item_bytes = min(self._item_bytes, max(1, int(np.prod(out.shape[1:]))) * 8)
        return out

    def _log_prob(self, x: Any, generator: Any = None) -> Any:
        import torch

        x = np.asarray(x)
        values = self._call(b"L", b"", x, generator, f"log_prob of {len(x)} examples", len(x) * 8 + _SLACK)
        return torch.from_numpy(values)

    def _call(
        self, kind: bytes, head: bytes, array: np.ndarray, generator: Any, doing: str, bound: int
    ) -> np.ndarray:
        """Send ``array`` and the generator state; return the reply's array, adopting the new state."""
        import torch

        if self._process is None:
            self.start()
        generator = generator if generator is not None else torch.Generator()
        state = generator.get_state().numpy().tobytes()
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        data = buffer.getvalue()
        payload = head + struct.pack(">Q", len(data)) + data + state
        deadline = time.monotonic() + self.time_limit
        self._write(HEADER.pack(kind, len(payload)) + payload, deadline, doing)
        reply, answer = self._receive(doing, deadline, bound)
        if reply != b"O":
            self.close()
            raise GenEvalError(one_line(answer.decode(errors="replace")))
        try:
            (size,) = struct.unpack(">Q", answer[:8])
            out = np.load(io.BytesIO(answer[8 : 8 + size]), allow_pickle=False)
            new_state = torch.frombuffer(bytearray(answer[8 + size :]), dtype=torch.uint8)
            generator.set_state(new_state)
        except (ValueError, RuntimeError, struct.error, EOFError, OSError) as exc:
            raise self._stop(
                f"{self.spec}: the generator process sent a malformed reply to {doing} ({one_line(str(exc), 120)})"
            ) from None
        if not isinstance(out, np.ndarray) or out.ndim == 0 or out.dtype.kind not in "buif":
            raise self._stop(
                f"{self.spec}: {doing} returned a {out.ndim}-d {out.dtype} array; return numeric samples"
            )
        return out

    def close(self) -> None:
        """Kill the worker and its process group, and remove its temporary folder."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    def __del__(self) -> None:
        self.close()


def isolation_problem() -> str | None:
    """Why this system cannot confine a worker (one line), or None when it can."""
    missing = missing_features()
    return "; ".join(missing) if missing else None


def sandboxed_model(spec: str, path: Path, factory: str, isolation: bool = True) -> SandboxedModel:
    """Start the worker for ``path:factory`` and return the stand-in (errors name the file).

    With ``isolation`` (the default) the worker is confined by the kernel, and a system without
    the needed features is refused with a one-line ``GenEvalError``; ``isolation=False`` is
    ``--unsafe-no-isolation``.
    """
    if isolation and (problem := isolation_problem()):
        raise GenEvalError(
            f"{spec}: --trust-code needs a kernel sandbox, and this system lacks {problem}; "
            "run on Linux 6.2+ with Landlock enabled, or pass --unsafe-no-isolation to run it "
            "with your permissions"
        )
    time_limit, memory_mb = _limits()
    model = SandboxedModel(spec, path, factory, time_limit, memory_mb, isolation)
    model.start()
    return model
