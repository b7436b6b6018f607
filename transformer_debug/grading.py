"""Helpers for the hidden tests: time limits, clear messages, and mutation grading.

Hidden tests import what they need from here inside their own cell, so a student who
rebinds a name in the notebook cannot change what a test compares against.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import types
from pathlib import Path

import torch

__all__ = ["time_limit", "TimeLimitExceeded", "assert_close", "implementations", "grade_student_test"]


class TimeLimitExceeded(AssertionError):
    pass


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
    try:
        yield
    finally:
        signal.alarm(0)
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


def implementations(assignment: str, cell: str) -> dict[str | None, types.SimpleNamespace]:
    """The author's code for one answer cell, fixed (key None) and with each of its bugs.

    Read from source/ in the course root at or above the working directory: this runs
    while the instructor autogrades, never in a student's copy.
    """
    from .authoring import markers
    from .authoring.catalog import answer_cell, find_course_root

    where, source = answer_cell(find_course_root(Path.cwd()), assignment, cell)
    variants: dict[str | None, types.SimpleNamespace] = {}
    for bug in [None, *markers.parse(source, where).bug_ids]:
        namespace: dict = {"__name__": f"{assignment}_{bug or 'fixed'}"}
        code = markers.solution(source, frozenset({bug} if bug else ()), where)
        # dont_inherit: this module's `from __future__ import annotations` must not leak into the
        # answer cell (it would break a @dataclass there, whose module is not in sys.modules).
        exec(compile(code, f"<{where}, bug {bug}>", "exec", dont_inherit=True), namespace)
        variants[bug] = types.SimpleNamespace(**namespace)
    return variants


def grade_student_test(test_fn, assignment: str, cell: str, seconds: int = 20) -> None:
    """Mutation grading: `test_fn(impl)` must pass on the fixed code and fail on every bug.

    `impl` is a namespace holding everything the answer cell defines, so the student's
    test reaches the code as `impl.MultiHeadAttention` and so on.
    """
    from .authoring.catalog import Catalog, find_course_root

    assert callable(test_fn), "your test should be a function that takes the implementation"
    catalog = Catalog.load(find_course_root(Path.cwd()))
    variants = implementations(assignment, cell)
    try:
        with time_limit(seconds, "your test on a correct implementation"):
            test_fn(variants.pop(None))
    except TimeLimitExceeded:
        raise
    except Exception as err:  # noqa: BLE001 (any failure of the student's test counts)
        raise AssertionError(f"your test fails on a correct implementation ({type(err).__name__}: "
                             f"{err}); it should pass there") from None
    missed = []
    for bug, impl in variants.items():
        try:
            with time_limit(seconds, "your test on a buggy implementation"):
                test_fn(impl)
        except Exception:  # noqa: BLE001 (failing is what we want here)
            continue
        missed.append(catalog.get(bug).symptom)
    assert not missed, (f"your test passes on {len(missed)} of the {len(variants)} buggy versions. "
                        "It misses the ones whose symptom is: " + " | ".join(missed))
