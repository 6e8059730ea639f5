"""Run a submitted ``file.py:factory`` generator in a separate, limited process.

The grader's process never imports submitted code. A worker process (this module run with
``python -m``) imports the file and serves ``sample(n, generator)`` calls over a pipe:

- the parent sends n and its ``torch.Generator`` state; the worker samples with a generator in
  that state and returns the samples as an ``.npy`` payload (read with ``allow_pickle=False``) and
  the generator's new state, which the parent adopts, so samples are bit-identical to calling the
  model in-process with the same seed;
- limits: address space (``RLIMIT_AS``; torch alone reserves about 3 GiB, so the default is
  8 GiB), CPU time (``RLIMIT_CPU``), no core dumps, and a wall-clock limit per call enforced by
  the parent, which kills the worker when it is exceeded;
- the worker starts in the generator file's folder with a scrubbed environment (no
  ``PYTHONPATH``), and an audit hook (:func:`confine`) refuses Python-level opens outside that
  folder and the Python installation, new processes and network connections.

What this is not: an OS sandbox. Audit hooks bind Python code only; C extensions or ctypes can
still reach what the grader's user can; run the grader under a dedicated user or in a container
for a hard boundary. Limits can be set with
``GEN_EVAL_SANDBOX_TIME_S`` (per call, default 600) and ``GEN_EVAL_SANDBOX_MEMORY_MB`` (default 8192).
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.errors import GenEvalError

_HEADER = struct.Struct(">cQ")  # kind, payload length


def _limits() -> tuple[float, int]:
    time_s = float(os.environ.get("GEN_EVAL_SANDBOX_TIME_S", "600"))
    memory_mb = int(os.environ.get("GEN_EVAL_SANDBOX_MEMORY_MB", "8192"))
    return time_s, memory_mb


def _send(stream: Any, kind: bytes, payload: bytes) -> None:
    stream.write(_HEADER.pack(kind, len(payload)) + payload)
    stream.flush()


def _read_exact(stream: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


@dataclass
class SandboxedModel:
    """Stands in for the submitted model in the grader's process: only ``sample`` is offered."""

    spec: str
    path: Path
    factory: str
    time_limit: float
    memory_mb: int
    _process: subprocess.Popen | None = None

    def start(self) -> None:
        memory = self.memory_mb * 2**20
        cpu = int(self.time_limit * 4) + 60

        def limit() -> None:  # runs in the child before exec
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.setsid()  # its own process group: killing it takes its children too

        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
        env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
        command = [sys.executable, "-m", "gen_eval.sources.sandbox", str(self.path.resolve()), self.factory]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.path.resolve().parent,
            env=env,
            preexec_fn=limit,
        )
        kind, payload = self._receive("loading the model")
        if kind != b"R":
            self.close()
            raise GenEvalError(payload.decode(errors="replace"))
        import json

        described = json.loads(payload.decode() or "{}")
        for name in ("family", "dataset", "likelihood", "levels"):
            if described.get(name) is not None:
                setattr(self, name, described[name])
        if described.get("log_prob"):
            self.log_prob = self._log_prob  # offered only when the model has one

    def _receive(self, doing: str) -> tuple[bytes, bytes]:
        process = self._process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + self.time_limit
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            self.close()
            raise GenEvalError(
                f"{self.spec}: {doing} took longer than {self.time_limit:g} s; stopped "
                "(set GEN_EVAL_SANDBOX_TIME_S to allow more)"
            )
        try:
            kind, size = _HEADER.unpack(_read_exact(process.stdout, _HEADER.size))
            return kind, _read_exact(process.stdout, size)
        except EOFError:
            code = process.wait()
            self._process = None
            if code < 0:
                name = signal.Signals(-code).name
                hint = " (over its CPU-time limit)" if name == "SIGXCPU" else ""
                raise GenEvalError(
                    f"{self.spec}: the generator process crashed with {name}{hint} while {doing}"
                ) from None
            raise GenEvalError(
                f"{self.spec}: the generator process exited (status {code}) while {doing}"
            ) from None

    def sample(self, n: int, generator: Any = None) -> np.ndarray:
        return self._call(b"S", struct.pack(">Q", n), np.zeros(0, np.uint8), generator, f"sample({n})")

    def _log_prob(self, x: Any, generator: Any = None) -> Any:
        import torch

        values = self._call(b"L", b"", np.asarray(x), generator, f"log_prob of {len(x)} examples")
        return torch.from_numpy(values)

    def _call(self, kind: bytes, head: bytes, array: np.ndarray, generator: Any, doing: str) -> np.ndarray:
        """Send ``array`` and the generator state; return the reply's array, adopting the new state."""
        import torch

        if self._process is None:
            self.start()
        generator = generator if generator is not None else torch.Generator()
        state = generator.get_state().numpy().tobytes()
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        data = buffer.getvalue()
        assert self._process is not None and self._process.stdin is not None
        try:
            _send(self._process.stdin, kind, head + struct.pack(">Q", len(data)) + data + state)
        except BrokenPipeError:
            self._receive(doing)  # reports how the worker ended
            raise
        reply, payload = self._receive(doing)
        if reply != b"O":
            raise GenEvalError(payload.decode(errors="replace"))
        (size,) = struct.unpack(">Q", payload[:8])
        out = np.load(io.BytesIO(payload[8 : 8 + size]), allow_pickle=False)
        generator.set_state(torch.frombuffer(bytearray(payload[8 + size :]), dtype=torch.uint8))
        return out

    def close(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None

    def __del__(self) -> None:
        self.close()


def sandboxed_model(spec: str, path: Path, factory: str) -> SandboxedModel:
    """Start the worker for ``path:factory`` and return the stand-in (errors name the file)."""
    time_limit, memory_mb = _limits()
    model = SandboxedModel(spec, path, factory, time_limit, memory_mb)
    model.start()
    return model


def confine(folder: Path) -> None:
    """Refuse, from now on, Python-level file access outside ``folder`` and the Python installation,
    new processes, and network connections (a PEP 578 audit hook).

    Defence in depth, not a security boundary: C code (or ctypes) can still reach anything the
    process may; the rlimits and the grader's user are the real limits.
    """
    import site

    roots = {Path(folder).resolve(), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    roots |= {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()] if p}
    roots |= {
        Path(p).resolve() for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != Path.cwd()
    }
    import gen_eval

    roots.add(Path(gen_eval.__file__).resolve().parent)  # an editable install lives outside site-packages
    roots |= {Path("/dev/null"), Path("/dev/urandom"), Path("/proc/self"), Path("/sys/devices/system/cpu")}
    allowed = tuple(roots)
    refused = (
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "pty.spawn",
    )

    def hook(event: str, args: tuple) -> None:
        if event in (
            "open",
            "os.listdir",
            "os.scandir",
            "os.remove",
            "os.rename",
            "os.mkdir",
            "shutil.rmtree",
        ):
            target = args[0] if args else None
            if target is None or isinstance(target, int):
                return
            path = Path(os.fsdecode(target))
            resolved = path.resolve() if path.is_absolute() else (Path.cwd() / path).resolve()
            if not any(resolved == root or resolved.is_relative_to(root) for root in allowed):
                raise PermissionError(f"{resolved}: outside the submission's folder (gen-eval sandbox)")
        elif event in refused or event.startswith(refused):
            raise PermissionError(f"{event}: starting processes is not allowed (gen-eval sandbox)")
        elif event in ("socket.connect", "socket.bind", "socket.getaddrinfo"):
            raise PermissionError(f"{event}: network access is not allowed (gen-eval sandbox)")

    sys.addaudithook(hook)


def _worker() -> None:
    """The worker: import the file, then answer sample requests until the pipe closes."""
    import torch

    from gen_eval.sources.python import load_factory

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the model's prints must not corrupt the protocol
    path, factory = Path(sys.argv[1]), sys.argv[2]
    confine(path.parent)
    try:
        model = load_factory(path, factory)
    except (GenEvalError, MemoryError) as exc:
        _send(stdout, b"E", str(exc).encode())
        return
    import inspect
    import json

    has_log_prob = callable(getattr(model, "log_prob", None))
    described = {name: getattr(model, name, None) for name in ("family", "dataset", "likelihood", "levels")}
    described = {k: v for k, v in described.items() if isinstance(v, (str, int, float))}
    _send(stdout, b"R", json.dumps({**described, "log_prob": has_log_prob}).encode())
    while True:
        try:
            kind, size = _HEADER.unpack(_read_exact(stdin, _HEADER.size))
            payload = _read_exact(stdin, size)
        except EOFError:
            return
        head = 8 if kind == b"S" else 0
        n = struct.unpack(">Q", payload[:8])[0] if kind == b"S" else 0
        (length,) = struct.unpack(">Q", payload[head : head + 8])
        received = np.load(io.BytesIO(payload[head + 8 : head + 8 + length]), allow_pickle=False)
        generator = torch.Generator()
        generator.set_state(torch.frombuffer(bytearray(payload[head + 8 + length :]), dtype=torch.uint8))
        call = f"sample({n})" if kind == b"S" else "log_prob"
        try:
            if kind == b"L" and has_log_prob:
                x = torch.from_numpy(received)
                takes = "generator" in inspect.signature(model.log_prob).parameters
                out = model.log_prob(x, generator=generator) if takes else model.log_prob(x)
            else:
                out = model.sample(n, generator=generator)
            if isinstance(out, torch.Tensor):
                out = out.detach().cpu().numpy()
            array = np.asarray(out)
            if array.dtype == object:
                raise TypeError("sample() returned Python objects; return a numeric tensor or array")
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
        except MemoryError:
            _send(stdout, b"E", f"{path}: {call} ran out of its memory limit; stopped".encode())
            return
        except Exception as exc:
            message = f"{path}: {call} raised {type(exc).__name__}: {exc}"
            if "can't allocate memory" in str(exc) or "out of memory" in str(exc).lower():
                message = f"{path}: {call} ran out of its memory limit ({exc}); stopped"
            _send(stdout, b"E", message.encode())
            return
        data = buffer.getvalue()
        state = generator.get_state().numpy().tobytes()
        _send(stdout, b"O", struct.pack(">Q", len(data)) + data + state)


if __name__ == "__main__":
    _worker()
