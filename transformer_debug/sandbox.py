"""Run a student's code sealed off, and pass plain data in and out of it.

Grading never trusts the process that runs a submission. `Sandbox` starts one Python process
inside bubblewrap: no network, its own PID namespace (it cannot see or signal the grader, and
it dies with it), a read-only view of Python and this library, a size-limited scratch folder
as its only writable place, and no course files (no source/, no gradebook, no other student).
Memory and processes are capped by a cgroup where the machine offers one.

What crosses the boundary is data, never code objects: `encode`/`decode` carry None, bools,
numbers, short strings, tensors, NumPy arrays and lists/tuples/dicts of those, as JSON plus raw
buffers. Nothing is unpickled, so a hostile process can lie about its results (the grader then
compares them with its own references) but cannot run code in the grader.

`python -m transformer_debug.sandbox` is the process inside: it runs notebook cells, calls the
test functions the grader sends, and runs a student's test against a given implementation.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["encode", "decode", "roundtrip", "WireError", "Limits", "Sandbox", "SandboxDied",
           "bwrap_available"]

MAX_MESSAGE = 256 << 20          # bytes in one message, buffers included
MAX_STRING = 1 << 20             # characters in one string of a message (cell code, outputs)
RESULT_STRING = 2000             # characters in one string a test function returns
MAX_ITEMS = 200_000              # containers' items in one message
MAX_DEPTH = 12
_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


class WireError(ValueError):
    """A value that may not cross the sandbox's boundary, or a malformed message."""


# ---------------------------------------------------------------------------- the wire format

def _to_tree(value, buffers: list, depth: int, count: list):
    import numpy as np
    import torch

    count[0] += 1
    if count[0] > MAX_ITEMS or depth > MAX_DEPTH:
        raise WireError("the value is too large or too deeply nested to cross the sandbox")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -2**63 <= value < 2**63:
            raise WireError("an integer too large to cross the sandbox")
        return int(value)
    if isinstance(value, float):
        return {"float": repr(float(value))}
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise WireError(f"a string longer than {MAX_STRING} characters cannot cross the sandbox")
        return str(value)
    if isinstance(value, np.generic):
        return _to_tree(value.item(), buffers, depth, count)
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.Tensor):
        return _tensor(value, buffers, "tensor")
    if isinstance(value, np.ndarray):
        return _tensor(torch.from_numpy(np.ascontiguousarray(value)), buffers, "ndarray")
    if isinstance(value, (list, tuple)):  # torch.Size is a tuple
        items = [_to_tree(v, buffers, depth + 1, count) for v in value]
        return items if type(value) is list else {"tuple": items}
    if isinstance(value, dict):
        pairs = []
        for k, v in value.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise WireError(f"a dict key of type {type(k).__name__} cannot cross the sandbox")
            pairs.append([_to_tree(k, buffers, depth + 1, count), _to_tree(v, buffers, depth + 1, count)])
        return {"dict": pairs}
    raise WireError(f"a {type(value).__module__}.{type(value).__qualname__} cannot cross the sandbox: "
                    "only None, bools, numbers, strings, tensors, arrays and lists, tuples or dicts of them")


def _tensor(t, buffers: list, kind: str) -> dict:
    import torch

    t = torch.Tensor.detach(t)
    if t.layout != torch.strided or t.is_quantized or t.is_complex():
        raise WireError("only dense real tensors can cross the sandbox")
    dtype = str(t.dtype).removeprefix("torch.")
    if dtype not in _DTYPES:
        raise WireError(f"a tensor of dtype {dtype} cannot cross the sandbox")
    # A plain copy: a tensor subclass or a view cannot bring its own behaviour along.
    plain = torch.empty(tuple(t.shape), dtype=t.dtype)
    plain.copy_(torch.Tensor.cpu(t))
    raw = plain.reshape(-1).view(torch.uint8).numpy().tobytes() if plain.numel() else b""
    buffers.append(raw)
    return {kind: len(buffers) - 1, "dt": dtype, "shape": list(plain.shape)}


def _from_tree(tree, buffers: list, depth: int = 0):
    import numpy as np
    import torch

    if depth > MAX_DEPTH:
        raise WireError("message nested too deeply")
    if tree is None or isinstance(tree, (bool, int, str)):
        return tree
    if isinstance(tree, list):
        return [_from_tree(v, buffers, depth + 1) for v in tree]
    if not isinstance(tree, dict) or len(tree) not in (1, 3):
        raise WireError("malformed message")
    if "float" in tree:
        return float(str(tree["float"]))
    if "dtype" in tree:
        if tree["dtype"] not in _DTYPES:
            raise WireError("unknown dtype in message")
        return getattr(torch, tree["dtype"])
    if "tuple" in tree:
        return tuple(_from_tree(v, buffers, depth + 1) for v in tree["tuple"])
    if "dict" in tree:
        return {_from_tree(k, buffers, depth + 1): _from_tree(v, buffers, depth + 1) for k, v in tree["dict"]}
    for kind in ("tensor", "ndarray"):
        if kind in tree:
            index, dtype, shape = tree[kind], tree.get("dt"), tree.get("shape")
            if (dtype not in _DTYPES or not isinstance(index, int) or not 0 <= index < len(buffers)
                    or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)):
                raise WireError("malformed tensor in message")
            torch_dtype = getattr(torch, dtype)
            raw = buffers[index]
            if math.prod(shape) * torch_dtype.itemsize != len(raw):
                raise WireError("a tensor's size does not match its buffer")
            flat = torch.frombuffer(bytearray(raw), dtype=torch_dtype) if raw else torch.empty(0, dtype=torch_dtype)
            t = flat.reshape(shape)
            return t.numpy() if kind == "ndarray" else t
    raise WireError("malformed message")


def _check_strings(value) -> None:
    """A test function's result carries data, not text: short strings only."""
    if isinstance(value, str) and len(value) > RESULT_STRING:
        raise WireError(f"a string longer than {RESULT_STRING} characters cannot be a test's result")
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_strings(v)
    if isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k)
            _check_strings(v)


def encode(value) -> bytes:
    """Plain data -> bytes (JSON header and raw buffers); WireError for anything else."""
    buffers: list[bytes] = []
    header = json.dumps(_to_tree(value, buffers, 0, [0])).encode()
    size = 8 + len(header) + sum(8 + len(b) for b in buffers)
    if size > MAX_MESSAGE:
        raise WireError(f"{size >> 20} MiB is too much data to cross the sandbox (the limit is "
                        f"{MAX_MESSAGE >> 20} MiB)")
    parts = [struct.pack("<II", len(header), len(buffers)), header]
    for b in buffers:
        parts += [struct.pack("<Q", len(b)), b]
    return b"".join(parts)


def decode(data: bytes):
    """bytes -> plain data. Never runs code; WireError on anything malformed."""
    try:
        n_header, n_buffers = struct.unpack_from("<II", data, 0)
        header = json.loads(data[8:8 + n_header].decode())
        offset, buffers = 8 + n_header, []
        for _ in range(n_buffers):
            (n,) = struct.unpack_from("<Q", data, offset)
            buffers.append(data[offset + 8:offset + 8 + n])
            if len(buffers[-1]) != n:
                raise WireError("truncated message")
            offset += 8 + n
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise WireError(f"malformed message ({type(err).__name__})") from None
    return _from_tree(header, buffers)


def roundtrip(value):
    """What the other side of the boundary would receive (used where no sandbox runs)."""
    return decode(encode(value))


# ---------------------------------------------------------------------------- framing

def _send(fd: int, message: dict) -> None:
    data = encode(message)
    view = memoryview(struct.pack("<Q", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _recv(fd: int, deadline: float | None = None) -> dict:
    """One message from `fd`; TimeoutError past `deadline`, EOFError when the writer is gone."""
    def read_exactly(n: int) -> bytes:
        chunks, left = [], n
        while left:
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                    raise TimeoutError
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    (n,) = struct.unpack("<Q", read_exactly(8))
    if n > MAX_MESSAGE + (1 << 20):
        raise WireError("message too large")
    message = decode(read_exactly(n))
    if not isinstance(message, dict):
        raise WireError("malformed message")
    return message


# ---------------------------------------------------------------------------- the sandbox

@dataclass(frozen=True)
class Limits:
    memory_mb: int = 4096        # the whole sandbox, scratch folder included (cgroup)
    processes: int = 64          # tasks (processes and threads) in the sandbox (cgroup)
    scratch_mb: int = 256        # the writable scratch folder
    output_kb: int = 1024        # captured output per cell
    start_seconds: int = 60      # to start Python and import torch


def bwrap_available() -> str | None:
    """Why bubblewrap cannot seal a process here (None: it can)."""
    exe = shutil.which("bwrap")
    if not exe:
        return "bubblewrap is not installed (Debian/Ubuntu: apt install bubblewrap)"
    proc = subprocess.run([exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {proc.stderr.strip()[:200]}"
    return None


def _cgroup_dirs() -> dict[str, Path]:
    """Writable cgroup v1 controllers for memory and pids, or v2's unified tree."""
    base = Path("/sys/fs/cgroup")
    found = {}
    for controller in ("memory", "pids"):
        d = base / controller
        if (d / "cgroup.procs").exists() and os.access(d, os.W_OK):
            found[controller] = d
    if not found and (base / "cgroup.controllers").exists() and os.access(base, os.W_OK):
        found["unified"] = base
    return found


class _Cgroup:
    """One throwaway cgroup per sandbox: memory.max and pids.max for everything inside."""

    def __init__(self, limits: Limits):
        self.dirs: list[Path] = []
        name = f"transformer-debug-{uuid.uuid4().hex[:12]}"
        settings = {"memory": {"memory.limit_in_bytes": limits.memory_mb << 20},
                    "pids": {"pids.max": limits.processes},
                    "unified": {"memory.max": limits.memory_mb << 20, "pids.max": limits.processes}}
        for controller, parent in _cgroup_dirs().items():
            d = parent / name
            try:
                d.mkdir()
                for key, value in settings[controller].items():
                    (d / key).write_text(str(value))
                if controller == "memory" and (d / "memory.memsw.limit_in_bytes").exists():
                    with contextlib.suppress(OSError):
                        (d / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_mb << 20))
                self.dirs.append(d)
            except OSError:
                with contextlib.suppress(OSError):
                    d.rmdir()

    def describe(self) -> str:
        return "cgroup limits" if self.dirs else "no cgroup (memory capped per process only)"

    def enter(self) -> None:
        """In the child before exec: move this process (and so all it starts) into the group."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def kill_all(self) -> None:
        for d in self.dirs:
            with contextlib.suppress(OSError):
                for pid in (d / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)

    def peak_mb(self) -> float | None:
        """The most memory the sandbox held at once (cgroup v1 or v2), if known."""
        for d in self.dirs:
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                with contextlib.suppress(OSError, ValueError):
                    return int((d / name).read_text()) / 2**20
        return None

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


class SandboxDied(RuntimeError):
    """The sandboxed process ended or stopped answering."""


def _readable_roots() -> list[str]:
    """What Python needs to run this library, read-only: the interpreter, the venv, the package."""
    import transformer_debug
    paths = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(os.path.abspath(transformer_debug.__file__))}
    for p in sys.path:  # site-packages outside the prefixes (a user site, a PYTHONPATH entry)
        if p and os.path.isdir(p) and "site-packages" in p:
            paths.add(os.path.realpath(p))
    return sorted(p for p in paths if p and os.path.exists(p))


def _library_parent() -> str:
    import transformer_debug
    return os.path.dirname(os.path.dirname(os.path.abspath(transformer_debug.__file__)))


def _bwrap_args(limits: Limits, writable: bool) -> list[str]:
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", "65534", "--gid", "65534", "--hostname", "sandbox"]
    for top in ("usr", "bin", "lib", "lib32", "lib64", "sbin"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ("ld.so.cache", "localtime", "nsswitch.conf"):
        if Path("/etc", name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for path in _readable_roots():
        args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    if writable:
        args += ["--size", str(16 << 20), "--tmpfs", "/dev/shm",
                 "--size", str(limits.scratch_mb << 20), "--tmpfs", "/home/student",
                 "--size", str(limits.scratch_mb << 20), "--tmpfs", "/tmp"]
    else:
        # Only /tmp is writable (torch needs a temporary folder to build an optimizer), and the
        # process inside empties it between the versions it runs.
        args += ["--dir", "/home/student", "--size", str(64 << 20), "--tmpfs", "/tmp", "--remount-ro", "/"]
    args += ["--chdir", "/home/student", "--clearenv",
             "--setenv", "HOME", "/home/student", "--setenv", "TMPDIR", "/tmp",
             "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "MPLBACKEND", "Agg",
             "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib", "--setenv", "OMP_NUM_THREADS", "1",
             "--setenv", "MKL_NUM_THREADS", "1", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
             "--setenv", "PYTHONPATH", _library_parent(),
             "--setenv", "NBGRADER_EXECUTION", "autograde"]
    return args


class Sandbox:
    """A sealed Python process that the grader drives with `request`.

    `sealed=False` runs the same process without bubblewrap (the instructor's explicit
    --no-sandbox, reported as such): the same protocol, none of the isolation.
    """

    def __init__(self, limits: Limits = Limits(), writable: bool = True, sealed: bool = True):
        self.limits, self.sealed = limits, sealed
        self.peak_mb: float | None = None
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        self._cgroup = _Cgroup(limits) if sealed else None
        self._home = None if sealed else tempfile.mkdtemp(prefix="student-")
        cmd = [sys.executable, "-m", "transformer_debug.sandbox", str(req_r), str(resp_w),
               "fork-server" if not writable else "notebook", "sealed" if sealed else "open"]
        if sealed:
            cmd = _bwrap_args(limits, writable) + cmd
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        else:
            env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "HOME": self._home,
                   "NBGRADER_EXECUTION": "autograde"}
        cgroup = self._cgroup

        def in_child():
            import resource
            if cgroup is not None:
                cgroup.enter()
            if not (cgroup and cgroup.dirs):  # no cgroup: at least bound each process's memory
                resource.setrlimit(resource.RLIMIT_AS, ((limits.memory_mb + 4096) << 20,) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, ((limits.scratch_mb << 20),) * 2)

        # The sandbox's own stdout/stderr (C-level writes, child processes) go to a file we
        # never read back into feedback: a pipe could be held open to stall the grader.
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, env=env,
                                     cwd=self._home or "/", start_new_session=True, preexec_fn=in_child)
        os.close(req_r)
        os.close(resp_w)
        try:
            hello = _recv(self._resp_r, time.monotonic() + limits.start_seconds)
        except (EOFError, TimeoutError, WireError) as err:
            tail = self.log_tail()
            self.close()
            raise SandboxDied(f"the sandbox did not start ({type(err).__name__}): {tail}") from None
        if hello.get("ready") is not True:
            self.close()
            raise SandboxDied("the sandbox did not start")

    def describe(self) -> str:
        if not self.sealed:
            return "NOT sandboxed (--no-sandbox)"
        return f"bubblewrap, {self._cgroup.describe()}"

    def log_tail(self, n: int = 400) -> str:
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - n))
        return self._log.read().decode(errors="replace").strip()

    def request(self, message: dict, seconds: float) -> dict:
        """Send one request, wait up to `seconds` for the answer. SandboxDied when the process
        ended, stopped answering or broke the protocol; it is then killed."""
        if self.proc.poll() is not None:
            raise SandboxDied(self._ended())
        try:
            _send(self._req_w, message)
            return _recv(self._resp_r, time.monotonic() + seconds)
        except TimeoutError:
            self.close()
            raise SandboxDied(f"it did not finish within {seconds:.0f} s and was stopped") from None
        except (EOFError, BrokenPipeError):
            self.proc.wait(timeout=10) if self.proc.poll() is None else None
            reason = self._ended()
            self.close()
            raise SandboxDied(reason) from None
        except WireError as err:
            self.close()
            raise SandboxDied(f"it broke the grader's channel ({err})") from None

    def _ended(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "it closed the grader's channel"
        if code < 0:
            return f"the process was killed by {signal.Signals(-code).name}"
        if code > 128 and code - 128 in {s.value for s in signal.Signals}:
            # bubblewrap reports its child's death by signal as 128 + the signal
            name = signal.Signals(code - 128).name
            why = " (the memory cap, or a kill)" if name == "SIGKILL" else ""
            return f"the process exited with status {code}: killed by {name}{why}"
        return f"the process exited with status {code}"

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self._cgroup is not None:
            self.peak_mb = self.peak_mb or self._cgroup.peak_mb()
            self._cgroup.remove()
        for fd in (self._req_w, self._resp_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._home:
            shutil.rmtree(self._home, ignore_errors=True)
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------- inside the sandbox

class _CellTimeout(BaseException):
    """Raised by the alarm inside a cell; a BaseException so `except Exception` cannot eat it."""


def _alarm(seconds: float):
    def expired(signum, frame):
        raise _CellTimeout(f"this took longer than {seconds:.0f} s")
    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _cancel_alarm():
    signal.setitimer(signal.ITIMER_REAL, 0)


class _Capture(io.TextIOBase):
    def __init__(self, name: str, outputs: list, limit: int):
        self.name, self.outputs, self.limit = name, outputs, limit

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        used = sum(len(o.get("text", "")) for o in self.outputs)
        if used < self.limit:
            text = text[:self.limit - used]
            if self.outputs and self.outputs[-1].get("name") == self.name:
                self.outputs[-1]["text"] += text
            else:
                self.outputs.append({"output_type": "stream", "name": self.name, "text": text})
        return len(text)


def _short_error(err: BaseException) -> tuple[str, str]:
    return type(err).__name__, str(err)[:RESULT_STRING]


def _run_cell(code: str, name: str, namespace: dict, limit: int, seconds: float) -> list:
    """Run one notebook cell as a kernel would: outputs as nbformat dicts (stream, figures,
    the last expression's value, the error)."""
    outputs: list = []
    stdout, stderr = _Capture("stdout", outputs, limit), _Capture("stderr", outputs, limit)
    try:
        if "%" in code or "!" in code:  # IPython syntax (%time, %matplotlib inline) as a kernel reads it
            from IPython.core.inputtransformer2 import TransformerManager
            code = TransformerManager().transform_cell(code)
            namespace.setdefault("get_ipython", lambda: _Shell(namespace))
        tree = ast.parse(code, filename=name)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            _alarm(seconds)
            try:
                exec(compile(tree, name, "exec", dont_inherit=True), namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), name, "eval", dont_inherit=True), namespace)
                    if value is not None:
                        outputs.append({"output_type": "execute_result", "metadata": {}, "execution_count": None,
                                        "data": {"text/plain": repr(value)[:limit]}})
            finally:
                _cancel_alarm()
            outputs.extend(_figures())
    except (Exception, _CellTimeout, SystemExit, KeyboardInterrupt) as err:  # noqa: BLE001 (a cell's error is its output)
        _cancel_alarm()
        ename, evalue = _short_error(err)
        if isinstance(err, _CellTimeout):
            ename = "TimeoutError"
        lines = traceback.format_exception(type(err), err, err.__traceback__)
        tb = "".join(lines[1:] if len(lines) > 1 else lines)[-4000:]
        outputs.append({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [tb]})
    return outputs


class _Shell:
    """The little of IPython a graded notebook may use: %matplotlib, %time, %timeit."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def run_line_magic(self, name, line, *args, **kwargs):
        if name in ("time", "timeit"):
            try:
                return eval(compile(line, "<magic>", "eval", dont_inherit=True), self.namespace)
            except SyntaxError:  # a statement, not an expression
                exec(compile(line, "<magic>", "exec", dont_inherit=True), self.namespace)
                return None
        if name in ("matplotlib", "config", "load_ext", "autoreload"):
            return None
        raise NotImplementedError(f"%{name} is not available while grading")

    def run_cell_magic(self, name, line, cell):
        if name in ("time", "timeit", "capture"):
            exec(compile(cell, "<magic>", "exec", dont_inherit=True), self.namespace)
            return None
        raise NotImplementedError(f"%%{name} is not available while grading")

    def system(self, command):
        raise NotImplementedError("shell commands (!) are not available while grading")

    getoutput = system


def _figures() -> list:
    """Open matplotlib figures as PNG outputs, then closed, as the inline backend does."""
    if "matplotlib.pyplot" not in sys.modules:
        return []
    import base64
    plt = sys.modules["matplotlib.pyplot"]
    outputs, size = [], 0
    for number in plt.get_fignums()[:20]:
        figure = plt.figure(number)
        if figure.get_figwidth() * figure.get_figheight() > 400:  # square inches: a poster, not a plot
            continue
        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=72, bbox_inches="tight")
        size += buf.tell()
        if size > 8 << 20:
            break
        outputs.append({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": base64.b64encode(buf.getvalue()).decode(),
                                 "text/plain": f"<Figure {number}>"}})
    plt.close("all")
    return outputs


def _call(message: dict, namespace: dict):
    """Define a test's function in a copy of the notebook's namespace and call it."""
    scope = dict(namespace)
    exec(compile(message["source"], message.get("where", "<test>"), "exec", dont_inherit=True), scope)
    return scope[message["name"]](*message["args"], **message["kwargs"])


def _variant_test(message: dict) -> int:
    """In a forked child: the implementation, then the student's test on it. Exit status only."""
    import types
    # A module of its own, as a notebook's cells have one: @dataclass looks its module up.
    module = types.ModuleType("implementation")
    sys.modules["implementation"] = module
    implementation: dict = module.__dict__
    exec(compile(message["impl"], "<implementation>", "exec", dont_inherit=True), implementation)
    impl = types.SimpleNamespace(**implementation)
    scope: dict = {"__name__": "your_test"}
    exec(compile(message["prelude"] + "\n" + message["test"], "<your test>", "exec", dont_inherit=True), scope)
    scope[message["name"]](impl)
    return 0


def _kill_strays() -> None:
    """Every other process in this PID namespace (a test may leave children behind)."""
    me = os.getpid()
    for _ in range(20):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        if not others:
            return
        for pid in others:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        time.sleep(0.01)


def _empty(folder: str) -> None:
    """Delete everything in `folder`, whatever its permissions (all of it belongs to this user)."""
    for root, dirs, files in os.walk(folder, topdown=True):
        for d in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, d), 0o700)
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _after_variant(sealed: bool) -> None:
    """Clean up after one version of the student's test. Only inside bubblewrap: there this process
    is alone in its PID namespace and /tmp is its own. Unsealed (--no-sandbox), the same two calls
    would kill every process the instructor's user may kill and empty the machine's /tmp."""
    if sealed:
        _kill_strays()
        _empty("/tmp")


def _serve(req_fd: int, resp_fd: int, role: str = "notebook", mode: str = "sealed") -> None:
    if mode not in ("sealed", "open"):
        raise SystemExit(f"unknown sandbox mode {mode!r}")
    import torch
    torch.set_num_threads(1)
    if role == "fork-server":
        # Torch's first optimizer takes seconds to set up (it imports its compiler stack); do it once
        # here, before forking, rather than once in every version's child.
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    import numpy  # noqa: F401 (the wire format needs it; import before student code can shadow it)

    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    _send(resp_fd, {"ready": True})
    while True:
        try:
            message = _recv(req_fd)
        except EOFError:
            return
        op = message.get("op")
        if op == "cell":
            reply = {"outputs": _run_cell(message["code"], message["where"], namespace,
                                          message["limit"], message["seconds"])}
        elif op == "call":
            try:
                _alarm(message["seconds"])
                try:
                    value = _call(message, namespace)
                finally:
                    _cancel_alarm()
                reply = {"value": value}
                _check_strings(roundtrip(value))  # fail here, not while sending
            except (Exception, _CellTimeout, SystemExit, KeyboardInterrupt) as err:  # noqa: BLE001
                _cancel_alarm()
                reply = {"error": list(_short_error(err))}
        elif op == "variant":
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    _alarm(message["seconds"])
                    code = _variant_test(message)
                except BaseException:  # noqa: BLE001 (any failure of the student's test)
                    code = 1
                finally:
                    os._exit(code)
            deadline = time.monotonic() + message["seconds"] + 5
            status = None
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.01)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = None
            _after_variant(mode == "sealed")
            reply = {"passed": status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0}
        else:
            reply = {"error": ["ProtocolError", f"unknown op {op!r}"]}
        _send(resp_fd, reply)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:5])
