"""Helpers for the graded test cells: the sandbox boundary, time limits, clear messages and
mutation grading.

When the instructor autogrades, a test cell runs in the grader, a process the student's code
never ran in; only the functions marked `@sandboxed` run beside the student's code, on the
data the test sends, and return plain data (tensors, numbers, strings, lists, dicts). So a
student who patches torch, this library or the kernel changes only what their own code
returns, never what a test compares it with. In the student's own kernel (and under nbval)
the same cell runs in one process, and `@sandboxed` passes the arguments and the result
through the same data-only encoding, so a test that breaks the rule fails there too.
"""
from __future__ import annotations

import ast
import contextlib
import inspect
import signal
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import torch

from .sandbox import roundtrip

__all__ = ["sandboxed", "StudentCodeError", "time_limit", "TimeLimitExceeded", "assert_close",
           "implementations", "variant_sources", "grade_student_test", "unwritten", "NOT_WRITTEN"]

# Set by the grader (transformer_debug.authoring.judge) while it runs a test cell; None in a
# student's kernel, where tests run in one process.
_judge = None
_deadlines: list[float] = []  # the enclosing time_limit()s, innermost last


class TimeLimitExceeded(AssertionError):
    pass


class StudentCodeError(AssertionError):
    """The student's code raised inside a @sandboxed function (its type and message are kept)."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue = ename, evalue


def sandboxed(fn=None, *, seconds: float = 30, uses: tuple = ()):
    """Mark the part of a test that runs the student's code.

    The function runs beside the student's code, with the notebook's names in scope (the
    classes and functions under test), and sees nothing else of the test cell: it gets its
    inputs as arguments, imports what it needs inside, and returns raw results. Everything
    crossing is plain data (see transformer_debug.sandbox.encode). Measure and compare in
    the test, outside the function: the function's own result may be a lie.
    `uses`: classes or functions of the same cell whose code the function needs as well.
    """
    def wrap(function):
        if _judge is not None:
            return _judge.remote(function, seconds, uses)
        return _Local(function)
    return wrap(fn) if fn is not None else wrap


class _Local:
    """@sandboxed in one process: the same data-only boundary, without the sandbox."""

    def __init__(self, function):
        self.function = function
        self.__name__ = function.__name__

    def __call__(self, *args, **kwargs):
        args, kwargs = roundtrip([list(args), kwargs])
        try:
            value = self.function(*args, **kwargs)
        except (AssertionError, TimeLimitExceeded):
            raise
        except Exception as err:  # noqa: BLE001 (as the grader reports it)
            raise StudentCodeError(type(err).__name__, str(err)) from err
        return roundtrip(value)


def remaining_seconds() -> float | None:
    """Time left in the innermost time_limit(), if any."""
    return min(_deadlines) - time.monotonic() if _deadlines else None


@contextlib.contextmanager
def time_limit(seconds: int = 10, what: str = "this test"):
    """Fail (not hang) when the body runs longer than `seconds`.

    Uses SIGALRM, which only the main thread can receive; a Jupyter kernel runs cells on
    its main thread. nbgrader's per-cell timeout stays as the outer bound.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise TimeLimitExceeded(f"{what} took longer than {seconds} s: look for a loop that never ends "
                          f"or work that grows much faster than the input")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    _deadlines.append(time.monotonic() + seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        _deadlines.pop()
        signal.signal(signal.SIGALRM, previous)


def assert_close(actual, expected: torch.Tensor, what: str, hint: str = "",
                 atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Shape, finiteness and values, each with its own message."""
    assert isinstance(actual, torch.Tensor), f"{what} should be a tensor, got {type(actual).__name__}"
    assert actual.shape == expected.shape, \
        f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}. {hint}"
    assert torch.isfinite(actual).all(), f"{what} contains NaN or inf. {hint}"
    diff = (actual.detach().double() - expected.detach().double()).abs().max().item()
    assert torch.allclose(actual.detach().double(), expected.detach().double(), atol=atol, rtol=rtol), \
        f"{what} differs from the reference by up to {diff:.3g}. {hint}"


def variant_sources(root: Path, assignment: str, cell: str) -> dict[str | None, str]:
    """The author's code of one answer cell, fixed (key None) and with each of its bugs."""
    from .authoring import markers
    from .authoring.catalog import answer_cell

    where, source = answer_cell(root, assignment, cell)
    return {bug: markers.solution(source, frozenset({bug} if bug else ()), where)
            for bug in [None, *markers.parse(source, where).bug_ids]}


def implementations(assignment: str, cell: str) -> dict[str | None, types.SimpleNamespace]:
    """`variant_sources` run, each in its own namespace (where no sandbox runs: the author's
    checks in the course checkout; source/ is found at or above the working directory)."""
    from .authoring.catalog import find_course_root

    variants: dict[str | None, types.SimpleNamespace] = {}
    for bug, code in variant_sources(find_course_root(Path.cwd()), assignment, cell).items():
        namespace: dict = {"__name__": f"{assignment}_{bug or 'fixed'}"}
        # dont_inherit: this module's `from __future__ import annotations` must not leak into the
        # answer cell (it would break a @dataclass there, whose module is not in sys.modules).
        exec(compile(code, f"<{assignment}, bug {bug}>", "exec", dont_inherit=True), namespace)
        variants[bug] = types.SimpleNamespace(**namespace)
    return variants


NOT_WRITTEN = ("your test is not written yet: {name} still raises NotImplementedError, as released. Write it "
               "in its cell: it should pass on your fixed code and fail on each planted bug.")


def unwritten(source: str, name: str) -> bool:
    """True when the function `name` in `source` is still the released stub: its body, docstring
    aside, is only `raise NotImplementedError` (with or without arguments). Decided from the code,
    without running it: a written test that happens to raise NotImplementedError is not a stub."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return False
    found = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             and node.name == name]
    if not found:
        return False
    body = found[-1].body  # the last definition is the one that runs
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def grade_student_test(test, assignment: str, cell: str, seconds: int = 20) -> None:
    """Mutation grading: the student's test must pass on the fixed code and fail on every bug.

    `test` names the student's test function (a string; a function is accepted where no
    sandbox runs). It is called as `test(impl)`, where `impl` holds everything the answer
    cell defines (`impl.MultiHeadAttention` and so on). When the instructor autogrades, each
    version runs in a sealed process that reports only pass or fail.
    """
    if _judge is not None:
        passed = _judge.grade_student_test(test, assignment, cell, seconds)
    else:
        passed = _grade_locally(test, assignment, cell, seconds)
    from .authoring.catalog import Catalog, find_course_root

    fixed = passed.pop(None)
    assert fixed, ("your test fails on a correct implementation; it should pass there. Run it on your "
                   "fixed code: it must not raise. (It runs on a fresh copy of the code: keep everything it "
                   "needs inside its cell, imports included.)")
    root = _judge.root if _judge is not None else find_course_root(Path.cwd())
    catalog = Catalog.load(root)
    missed = [catalog.get(bug).symptom for bug, ok in passed.items() if ok]
    assert not missed, (f"your test passes on {len(missed)} of the {len(passed)} buggy versions. "
                        "It misses the ones whose symptom is: " + " | ".join(missed))


def _grade_locally(test, assignment: str, cell: str, seconds: int) -> dict[str | None, bool]:
    test_fn = sys._getframe(2).f_globals.get(test) if isinstance(test, str) else test
    assert callable(test_fn), f"your test should be a function named {test}, which takes the implementation"
    name = getattr(test_fn, "__name__", str(test))
    try:
        source = inspect.getsource(test_fn)
    except (OSError, TypeError):
        source = ""  # no source to read (built in the kernel by exec): the test is run and judged as written
    assert not unwritten(source, name), NOT_WRITTEN.format(name=name)
    passed = {}
    for bug, impl in implementations(assignment, cell).items():
        try:
            with time_limit(seconds, "your test"):
                test_fn(impl)
            passed[bug] = True
        except Exception:  # noqa: BLE001 (any failure of the student's test counts)
            passed[bug] = False
    return passed
