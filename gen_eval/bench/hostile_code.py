"""Hostile ``--trust-code`` generators: one per escape the audit of issue 18 found, and a judge.

Each case is a factory in one submitted file (:data:`SOURCE`) that tries one escape: reading
another submission's file, changing files outside, reaching the network, starting processes,
reading the grader's environment, signalling the grader, or breaking the pipe protocol. Whether
it escaped is judged from outside, independently of the error it gets: the planted files must be
unchanged and unread (their content must not appear in any message), the listening sockets must
receive nothing, no process may survive the call, and the grader's memory must stay bounded.
Used by ``tests/test_sandbox_escapes.py`` and ``gen-eval bench robustness``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from gen_eval.errors import GenEvalError

SECRET_VARIABLE = "GEN_EVAL_HOSTILE_SECRET"

SOURCE = """
import ctypes, os, signal, socket, sqlite3, stat, sys, time
import torch


class Good:
    def sample(self, n, generator=None):
        return torch.rand(n, 1, 8, 8, generator=generator)


def escaped(what):
    raise RuntimeError("ESCAPED " + str(what)[:200])


def hardlink():
    for folder in (os.environ.get("HOME", "/tmp"), os.path.dirname(__file__)):
        link = os.path.join(folder, "stolen")
        os.link(VICTIM, link)
        escaped(open(link).read())


def dir_fd():
    os.chdir(os.path.dirname(__file__))
    try:
        folder = os.open(VICTIM_DIR, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        folder = os.open(VICTIM_DIR, os.O_PATH)  # a path handle needs no read right
    escaped(os.read(os.open("secret.txt", os.O_RDONLY, dir_fd=folder), 100))


def proc_root():  # /proc/self is readable; its root link must not lead everywhere
    escaped(open("/proc/self/root" + VICTIM).read())


def rename():
    os.rename(TARGET, os.path.join(os.environ["HOME"], "moved"))
    escaped("renamed")


def truncate():
    os.truncate(TARGET, 0)
    escaped("truncated")


def chmod():
    os.chmod(TARGET, 0o777)
    escaped("chmod")


def rmdir():
    os.rmdir(EMPTY_DIR)
    escaped("rmdir")


def sqlite():
    sqlite3.connect(os.path.join(OUTSIDE, "made.db")).execute("create table t (x)")
    escaped("sqlite")


def udp():
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("127.0.0.1", UDP_PORT))
    escaped("udp")


def tcp():
    socket.create_connection(("127.0.0.1", TCP_PORT), timeout=2)
    escaped("tcp")


def unix():
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(UNIX_PATH)
    escaped("unix")


def spawnv():
    import multiprocessing.util
    script = "cat %s > %s/spawned; setsid sh -c 'sleep 300; : %s' &" % (VICTIM, OUTSIDE, TOKEN)
    multiprocessing.util.spawnv_passfds(b"/bin/sh", [b"/bin/sh", b"-c", script.encode()], ())
    escaped("spawnv_passfds")


def popen():
    import subprocess
    subprocess.run(["/bin/sh", "-c", "touch %s/popen" % OUTSIDE])
    escaped("subprocess")


def daemon():
    if os.fork() == 0:  # a setsid daemon that would outlive the call
        os.setsid()
        sys.argv.append(TOKEN)
        time.sleep(300)
        os._exit(0)
    escaped("fork")


def environment():
    found = os.environ.get(SECRET_VARIABLE)
    if found:
        escaped(found)
    escaped(open("/proc/%d/environ" % os.getppid(), "rb").read())


def ctypes_open():
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.open(VICTIM.encode(), os.O_RDONLY)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "libc open(%s) refused" % VICTIM)
    escaped(os.read(fd, 100))


def ctypes_udp():  # the audit hook never sees these: only the kernel can refuse them
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "libc socket() refused")
    address = socket.inet_aton("127.0.0.1")
    sockaddr = (2).to_bytes(2, "little") + UDP_PORT.to_bytes(2, "big") + address + bytes(8)
    libc.sendto(fd, b"leak", 4, 0, sockaddr, len(sockaddr))
    escaped("udp through ctypes")


def ctypes_fork():
    libc = ctypes.CDLL(None, use_errno=True)
    pid = libc.fork()
    if pid < 0:
        raise OSError(ctypes.get_errno(), "libc fork() refused")
    if pid == 0:
        libc.execv(b"/bin/sleep", (ctypes.c_char_p * 4)(b"sleep", b"300", TOKEN.encode(), None))
        os._exit(0)
    escaped("fork through ctypes")


def ctypes_system():
    status = ctypes.CDLL(None, use_errno=True).system(("touch %s/system" % OUTSIDE).encode())
    if status != 0:
        raise OSError(ctypes.get_errno(), "libc system() refused (status %d)" % status)
    escaped("system through ctypes")


def sethostname():  # as root this would succeed (set to the same name here: harmless if it does)
    name = socket.gethostname().encode()
    if ctypes.CDLL(None, use_errno=True).sethostname(name, len(name)) != 0:
        raise OSError(ctypes.get_errno(), "libc sethostname() refused")
    escaped("sethostname")


def signal_grader():
    os.kill(os.getppid(), signal.SIGSTOP)
    escaped("stopped the grader")


def _protocol_fds():
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        with __import__("contextlib").suppress(OSError):
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                import fcntl
                if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                    yield fd


def ansi():
    raise RuntimeError("\\x1b[2J\\x1b]0;owned\\x07 cleared your terminal\\nand a second line")


class Hang(Good):
    def sample(self, n, generator=None):
        for fd in _protocol_fds():
            os.write(fd, b"O")
        time.sleep(3600)


class Forge(Good):
    def sample(self, n, generator=None):
        junk = bytes(2**20)
        for fd in _protocol_fds():
            os.write(fd, b"O" + (3 * 2**30).to_bytes(8, "big"))
            for _ in range(1024):
                os.write(fd, junk)
        time.sleep(3600)


class Returns(Good):
    def __init__(self, value):
        self.value = value

    def sample(self, n, generator=None):
        return self.value


hang, forge = Hang, Forge


def returns_str():
    return Returns("not a tensor")


def returns_0d():
    return Returns(torch.tensor(1.0))


def returns_dict():
    return Returns({"images": 1})


def returns_none():
    return Returns(None)


class Shape(Good):
    def sample(self, n, generator=None):
        return torch.rand(n, 7, 5)  # (n, 7, 3) would be 7-point clouds, a kind of its own


returns_shape = Shape
"""

DENIED = "denied|not permitted|not allowed|outside the submission|cross-device"  # errno or the audit hook
# case: (what it tries, fragments one of which its error must contain)
CASES: dict[str, tuple[str, str]] = {
    "hardlink": ("os.link of another submission's file, then read it", DENIED),
    "dir_fd": ("os.open(name, dir_fd=) on another submission's folder after chdir", DENIED),
    "proc_root": ("open /proc/self/root/<another submission's file>", DENIED),
    "rename": ("os.rename of a file outside into the temp folder", DENIED),
    "truncate": ("os.truncate of a file outside", DENIED),
    "chmod": ("os.chmod of a file outside", DENIED),
    "rmdir": ("os.rmdir of a folder outside", DENIED),
    "sqlite": ("sqlite3.connect creating a database outside", "unable to open"),
    "udp": ("UDP sendto 127.0.0.1 (a listening socket)", DENIED),
    "tcp": ("TCP connect to 127.0.0.1 (a listening socket)", DENIED),
    "unix": ("AF_UNIX connect to a listening socket outside", DENIED),
    "spawnv": ("multiprocessing.util.spawnv_passfds(/bin/sh) with a setsid daemon", DENIED),
    "popen": ("subprocess.run(/bin/sh)", DENIED),
    "daemon": ("os.fork + setsid daemon outliving the call", DENIED),
    "environment": ("read a secret from the grader's environment", DENIED),
    "ctypes_open": ("libc open() of another submission's file through ctypes", "refused"),
    "ctypes_udp": ("UDP sendto through libc socket()/sendto() (no audit event)", "refused"),
    "ctypes_fork": ("libc fork() + exec of a sleeper (no audit event)", "refused"),
    "ctypes_system": ("libc system() writing outside (no audit event)", "refused"),
    "sethostname": ("libc sethostname() (a privileged call; root's capabilities are dropped)", "refused"),
    "signal_grader": ("os.kill(grader, SIGSTOP)", DENIED),
    "ansi": ("an error message with terminal escape sequences and a newline", "cleared your terminal"),
    "hang": ("write one protocol byte, then sleep", "took longer than"),
    "forge": ("declare a 3 GiB reply and send 1 GiB", "more than the"),
    "returns_str": ("sample() returns a string", "returned str"),
    "returns_0d": ("sample() returns a 0-d tensor", "0-d array"),
    "returns_dict": ("sample() returns a dict", "returned dict"),
    "returns_none": ("sample() returns None", "returned NoneType"),
    "returns_shape": ("sample() returns the wrong shape", "returned shape"),
}


@dataclass
class Outcome:
    """What one hostile generator got, and what escaped (empty when nothing did)."""

    case: str
    error: str | None
    escapes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    memory_growth_mb: float = 0.0

    @property
    def caught(self) -> bool:
        """A one-line error naming the submission, with the expected reason, and no escape."""
        fragment = CASES[self.case][1]
        return (
            not self.escapes
            and self.error is not None
            and self.error.isprintable()  # one line, no terminal escape sequences
            and "gens.py" in self.error
            and any(part in self.error.lower() for part in fragment.lower().split("|"))
        )


class Arena:
    """The planted world: a victim submission, files outside, listening sockets, the hostile file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.student, self.victim, self.outside = root / "student", root / "victim", root / "outside"
        for folder in (self.student, self.victim, self.outside / "empty"):
            folder.mkdir(parents=True)
        self.secret = f"victim-secret-{os.getpid()}-{time.time_ns()}"
        self.token = f"gen-eval-hostile-{time.time_ns()}"
        (self.victim / "secret.txt").write_text(self.secret)
        self.target = self.outside / "target.txt"
        self.target.write_text("must stay unchanged")
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(str(self.outside / "sock"))
        self.unix.listen()
        for server in (self.udp, self.tcp, self.unix):
            server.setblocking(False)
        header = {
            "VICTIM": str(self.victim / "secret.txt"),
            "VICTIM_DIR": str(self.victim),
            "OUTSIDE": str(self.outside),
            "TARGET": str(self.target),
            "EMPTY_DIR": str(self.outside / "empty"),
            "UDP_PORT": self.udp.getsockname()[1],
            "TCP_PORT": self.tcp.getsockname()[1],
            "UNIX_PATH": str(self.outside / "sock"),
            "TOKEN": self.token,
            "SECRET_VARIABLE": SECRET_VARIABLE,
        }
        constants = "".join(f"{name} = {value!r}\n" for name, value in header.items())
        self.file = self.student / "gens.py"
        self.file.write_text(constants + textwrap.dedent(SOURCE))
        self.before = self._state()

    def _state(self) -> dict:
        state = {
            "target": (self.target.read_bytes(), self.target.stat().st_mode, self.target.stat().st_mtime_ns)
        }
        state["outside"] = sorted(p.name for p in self.outside.iterdir())
        state["victim"] = sorted(p.name for p in self.victim.iterdir())
        state["student"] = sorted(p.name for p in self.student.iterdir() if p.name != "__pycache__")
        return state

    def _token_processes(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if self.token.encode() in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
        return found

    def escapes(self, error: str | None) -> list[str]:
        """What the last case changed or reached, judged from outside; clears it for the next."""
        found = []
        if error and (self.secret in error or "ESCAPED" in error):
            found.append("leaked: " + error[:120])
        after = self._state()
        found += [f"{key} changed" for key in after if after[key] != self.before[key]]
        for name, server in (("udp", self.udp), ("tcp", self.tcp), ("unix", self.unix)):
            with contextlib.suppress(BlockingIOError):
                (server.recv(100) if name == "udp" else server.accept()[0].close())
                found.append(f"{name} listener reached")
        for pid in self._token_processes():
            found.append(f"process {pid} outlived the call")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if found:  # restore the planted world for the next case
            self.target.write_text("must stay unchanged")
            self.target.chmod(0o644)
            (self.outside / "empty").mkdir(exist_ok=True)
            self.before = self._state()
        return found

    def close(self) -> None:
        for server in (self.udp, self.tcp, self.unix):
            server.close()


def run_case(arena: Arena, case: str, isolation: bool = True) -> Outcome:
    """Run one hostile factory through ``open_python_source`` with a secret in the environment."""
    from gen_eval.sources.python import open_python_source

    previous = os.environ.get(SECRET_VARIABLE)
    os.environ[SECRET_VARIABLE] = arena.secret
    error, source = None, None
    grown_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        source = open_python_source(
            f"{arena.file}:{case}", 4, 0, trust_code=True, unsafe_no_isolation=not isolation
        )
        for _batch in source.batches(4):
            pass
        error = None
    except GenEvalError as exc:
        error = str(exc)
    finally:
        if source is not None:
            source.model.close()
        if previous is None:
            os.environ.pop(SECRET_VARIABLE, None)
        else:
            os.environ[SECRET_VARIABLE] = previous
    seconds = time.perf_counter() - started
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - grown_before) / 1024
    return Outcome(case, error, arena.escapes(error), seconds, growth)


def run_all(root: Path, isolation: bool = True) -> list[Outcome]:
    """Every case of :data:`CASES` in a fresh arena under ``root``."""
    arena = Arena(root)
    try:
        return [run_case(arena, case, isolation) for case in CASES]
    finally:
        arena.close()
