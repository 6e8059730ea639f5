"""The worker process of :mod:`gen_eval.sources.sandbox`: confine itself, import the file, serve calls.

Run as ``python -I -B -m gen_eval.sources.sandbox_worker FILE FACTORY TEMP PARENT_PID MODE
MEMORY_MB CPU_S``. Order matters: nothing here imports numpy or torch before
:func:`gen_eval.sources.confinement.confine_process` has run, because their thread pools would
start unconfined threads (Landlock binds the calling thread and what it starts later, not
threads that already exist). ``MODE`` is ``kernel`` or ``unconfined`` (``--unsafe-no-isolation``:
limits and the audit hook only); either may end in ``-no-hook`` (no audit hook: tests use it to
show that the kernel alone holds).

Protocol (both directions): a header ``>cQ`` (kind, payload length) and the payload. A sample
request carries n, an ``.npy`` array (the requested classes, int64 (n,), for a model declaring
``num_classes``; empty otherwise) and the generator state. The
protocol uses its own file descriptors; fd 0 reads ``/dev/null`` and fd 1 goes to stderr, so a
chatty model (``print`` or C code writing to stdout) cannot corrupt it by accident.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path
from typing import Any

HEADER = struct.Struct(">cQ")  # kind, payload length
MAX_MESSAGE = 64 * 1024  # the ready and error replies
ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def worker_environment(temp: Path) -> dict[str, str]:
    """The worker's environment: an allow-list of the grader's, with HOME and TMPDIR private."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWED or k.startswith("LC_")}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(HOME=str(temp), TMPDIR=str(temp))
    return env


def one_line(text: str, limit: int = 600) -> str:
    """Collapse ``text`` to one line of at most ``limit`` characters (error messages).

    Control characters become ``?``: a message is printed on the grader's terminal, and escape
    sequences from submitted code could rewrite what it shows.
    """
    flat = "".join(ch if ch.isprintable() else "?" for ch in " ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def send(fd: int, kind: bytes, payload: bytes) -> None:
    """Write one message to ``fd`` in full."""
    view = memoryview(HEADER.pack(kind, len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def read_exact(fd: int, size: int) -> bytes:
    """Read exactly ``size`` bytes from ``fd`` (the worker's side: it may wait for the grader)."""
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def readable_paths(folder: Path) -> list[Path]:
    """Folders the worker may read: the submission's, the Python installation, system libraries.

    Raises ``ValueError`` when one of them contains the submission's folder (other submissions
    beside it would then be readable too).
    """
    import importlib.util
    import site
    import sysconfig

    python = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    for scheme in (None, "venv") if "venv" in sysconfig.get_scheme_names() else (None,):
        paths = sysconfig.get_paths(scheme) if scheme else sysconfig.get_paths()
        python |= {Path(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    python |= {Path(p) for p in site.getsitepackages()}
    python |= {Path(p) for p in sys.path if p and Path(p).is_dir()}
    # Editable installs (this project's own packages) live outside site-packages.
    for name in ("gen_eval", "reference_models", "numpy", "torch"):
        found = importlib.util.find_spec(name)
        if found is not None and found.submodule_search_locations:
            python |= {Path(p) for p in found.submodule_search_locations}
    own = folder.resolve()
    for root in sorted(python):
        resolved = root.resolve()
        if resolved == Path("/") or own == resolved or own.is_relative_to(resolved):
            raise ValueError(
                f"the submission folder {own} lies inside {resolved}, which the worker must read; "
                "keep submissions outside the Python installation"
            )
    system = ["/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache"]
    system += ["/etc/localtime", "/usr/share/zoneinfo", "/proc/self", "/proc/cpuinfo", "/sys/devices/system"]
    system += ["/proc/driver/nvidia", "/sys/bus/pci", "/sys/module/nvidia"]  # CUDA, where there is one
    return [own, *sorted(python), *(Path(p) for p in system)]


def device_rights() -> dict[Path, int]:
    """Device files the worker may use: null, zero, random; NVIDIA devices where present."""
    import gen_eval.sources.confinement as c

    devices = {Path("/dev/null"): c.READ_FILE | c.WRITE_FILE}
    devices |= {Path(p): c.READ_FILE for p in ("/dev/zero", "/dev/urandom", "/dev/random")}
    # CUDA talks to its driver through ioctl on these; a GPU is memory and compute, not files.
    gpu = [p for p in Path("/dev").glob("nvidia*") if not p.is_dir()]
    devices |= {p: c.READ_FILE | c.WRITE_FILE | c.IOCTL_DEV for p in gpu}
    return devices


def audit_hook(roots: list[Path]) -> None:
    """Early, friendly refusals (a PEP 578 audit hook) before the kernel's plain ``EACCES``.

    Not a security boundary (C code and ctypes bypass it); the kernel confinement is.
    """
    allowed = tuple(root.resolve() for root in roots)
    refused = (
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "pty.spawn",
    )
    paths = ("open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.mkdir", "shutil.rmtree")

    def hook(event: str, args: tuple) -> None:
        if event in paths:
            target = args[0] if args else None
            if target is None or isinstance(target, int):
                return
            path = Path(os.fsdecode(target))
            resolved = path.resolve() if path.is_absolute() else (Path.cwd() / path).resolve()
            if not any(resolved == root or resolved.is_relative_to(root) for root in allowed):
                raise PermissionError(f"{resolved}: outside the submission's folder (gen-eval sandbox)")
        elif event in refused or event.startswith(refused):
            raise PermissionError(f"{event}: starting processes is not allowed (gen-eval sandbox)")
        elif event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto"):
            raise PermissionError(f"{event}: network access is not allowed (gen-eval sandbox)")

    sys.addaudithook(hook)


def _limit(memory_mb: int, cpu_s: int) -> None:
    import resource

    memory = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**30, 2**30))  # one file in the temp folder: 1 GiB


def as_array(out: Any, call: str) -> Any:
    """The model's return value as a numeric numpy array, or ``TypeError`` saying what it was."""
    import numpy as np
    import torch

    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{call} returned {type(out).__name__}; return a torch.Tensor or numpy array")
    if out.ndim == 0 or out.dtype.kind not in "buif":
        raise TypeError(
            f"{call} returned a {out.ndim}-d array of {out.dtype}; return numeric samples, one per row"
        )
    return out


def requested_classes(received: Any, n: int, num_classes: int | None, path: Path) -> Any:
    """The classes a sample request asks for, as an int64 tensor (None: unconditional), checked."""
    import numpy as np
    import torch

    if num_classes is None:
        if received.size:
            raise ValueError(f"{path}: sent classes for a model without num_classes")
        return None
    valid = received.dtype == np.int64 and received.shape == (n,)
    if not valid or (n and (received.min() < 0 or received.max() >= num_classes)):
        raise ValueError(
            f"{path}: sample({n}) was sent classes of shape {received.shape} ({received.dtype}); "
            f"expected {n} int64 classes in [0, {num_classes})"
        )
    return torch.from_numpy(received.copy())


def _serve(path: Path, factory: str, proto_in: int, proto_out: int, roots: list[Path] | None) -> None:
    import inspect
    import io
    import json

    import numpy as np
    import torch

    from gen_eval.sources.factory import load_factory
    from gen_eval.sources.labels import declared_classes

    sys.path.insert(0, str(path.parent))  # the submission's own modules (-I left its folder out)
    if roots is not None:
        audit_hook(roots)
    try:
        model = load_factory(path, factory)
        num_classes = declared_classes(model, str(path))  # checks sample() takes labels
    except BaseException as exc:  # the submission's code may raise anything, SystemExit included
        message = (
            str(exc)
            if type(exc).__name__ == "GenEvalError"
            else f"{path}: loading raised {type(exc).__name__}: {exc}"
        )
        send(proto_out, b"E", one_line(message).encode())
        return
    has_log_prob = callable(getattr(model, "log_prob", None))
    described = {name: getattr(model, name, None) for name in ("family", "dataset", "likelihood", "levels")}
    described["num_classes"] = num_classes
    described = {k: v for k, v in described.items() if isinstance(v, (str, int, float))}
    send(proto_out, b"R", json.dumps({**described, "log_prob": has_log_prob}).encode()[:MAX_MESSAGE])
    while True:
        try:
            kind, size = HEADER.unpack(read_exact(proto_in, HEADER.size))
            payload = read_exact(proto_in, size)
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
            labels = requested_classes(received, n, num_classes, path) if kind == b"S" else None
        except ValueError as exc:  # the grader sent what the protocol forbids: stop
            send(proto_out, b"E", one_line(str(exc)).encode())
            return
        try:
            if kind == b"L" and has_log_prob:
                x = torch.from_numpy(received)
                takes = "generator" in inspect.signature(model.log_prob).parameters
                out = model.log_prob(x, generator=generator) if takes else model.log_prob(x)
            else:
                if labels is None:
                    out = model.sample(n, generator=generator)
                else:
                    out = model.sample(n, generator=generator, labels=labels)
            array = as_array(out, call)
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
        except MemoryError:
            send(proto_out, b"E", f"{path}: {call} ran out of its memory limit; stopped".encode())
            return
        except BaseException as exc:
            message = f"{path}: {call} raised {type(exc).__name__}: {exc}"
            if isinstance(exc, TypeError) and str(exc).startswith(call):
                message = f"{path}: {exc}"
            if "can't allocate memory" in str(exc) or "out of memory" in str(exc).lower():
                message = f"{path}: {call} ran out of its memory limit ({exc}); stopped"
            send(proto_out, b"E", one_line(message).encode())
            return
        data = buffer.getvalue()
        state = generator.get_state().numpy().tobytes()
        send(proto_out, b"O", struct.pack(">Q", len(data)) + data + state)


def main(argv: list[str]) -> None:
    """Entry point (see the module docstring for the arguments)."""
    path, factory, temp = Path(argv[0]), argv[1], Path(argv[2])
    parent, mode, memory_mb, cpu_s = int(argv[3]), argv[4], int(argv[5]), int(argv[6])
    from gen_eval.sources.confinement import ConfinementError, confine_process, set_parent_death_signal

    set_parent_death_signal(parent)
    proto_in, proto_out = os.dup(0), os.dup(1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    _limit(memory_mb, cpu_s)
    try:
        read = readable_paths(path.parent)
        if mode.startswith("kernel"):
            confine_process(read, [temp], device_rights())
    except (ConfinementError, ValueError, OSError) as exc:
        send(proto_out, b"E", one_line(f"{path}: the sandbox could not be set up: {exc}").encode())
        return
    hook = None if mode.endswith("-no-hook") else [*read, temp]
    _serve(path, factory, proto_in, proto_out, hook)


if __name__ == "__main__":
    main(sys.argv[1:])
