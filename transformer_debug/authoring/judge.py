"""The grader's side of one submission: run it sealed off, decide every test outside it.

`judge_notebook` takes the notebook nbgrader would execute (locked and test cells already
restored from the gradebook) and returns it executed:
  1. every code cell that is not a test runs, in order, in one `Sandbox` (the student's
     process); its outputs become the cell's outputs, as a kernel's would;
  2. then every test cell (visible and hidden) runs here, in a fresh namespace per cell, in
     this process, which never ran the student's code. Its `@sandboxed` functions are sent
     to the student's process with their arguments and return plain data;
  3. `grade_student_test` builds the fixed and single-bug versions here and runs the student's
     test on each in a second sandbox, which answers only pass or fail.
A test fails by raising, as under nbgrader; its error output holds only its message.

`python -m transformer_debug.authoring.judge` reads a job (JSON) on stdin and writes the
result (JSON) on stdout: the process a grading worker starts for each submission.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import sys
import textwrap
import time
from pathlib import Path

import nbformat

from .. import grading
from ..sandbox import Limits, Sandbox, SandboxDied
from .catalog import grade_id, is_test_cell

__all__ = ["judge_notebook", "JudgeSession", "CELL_SECONDS", "judge_key", "run_judge", "main"]

CELL_SECONDS = 60        # a student's cell (as nbgrader's Execute.timeout)
OUTPUT_LIMIT = 100_000   # characters of output kept per cell
PRELUDE = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def _error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


def _definitions(code: str) -> str:
    """The imports, functions and classes of a cell (what a test function may rely on)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code  # the student's test then fails on every version, as it should
    lines = code.splitlines()
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    parts = []
    for node in tree.body:
        if isinstance(node, keep):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            parts.append("\n".join(lines[first - 1:node.end_lineno]))
    return "\n\n".join(parts)


class JudgeSession:
    """What the test cells reach through `transformer_debug.grading` while the grader runs them."""

    def __init__(self, root: Path, sandbox: Sandbox | None, notebook, sealed: bool, limits: Limits):
        self.root, self.sandbox, self.notebook = root, sandbox, notebook
        self.sealed, self.limits = sealed, limits
        self.dead: str | None = None if sandbox else "the notebook's process had already stopped"
        self.cell_source, self.cell_name = "", ""

    # -- @sandboxed
    def remote(self, function, seconds: float, uses: tuple):
        sources = [self._source_of(f) for f in (*uses, function)]
        return _Remote(self, function.__name__, "\n\n".join(sources), seconds)

    def _source_of(self, obj) -> str:
        name = obj.__name__
        tree = ast.parse(self.cell_source)
        lines = self.cell_source.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                # From `def`/`class` on: the decorators stay in the grader.
                return textwrap.dedent("\n".join(lines[node.lineno - 1:node.end_lineno]))
        raise RuntimeError(f"{self.cell_name}: cannot find the code of {name} in the cell")

    def call(self, name: str, source: str, seconds: float, args, kwargs):
        if self.dead:
            raise AssertionError(f"your notebook's process is no longer running ({self.dead}), so this "
                                 "test could not call your code")
        left = grading.remaining_seconds()
        budget = max(1.0, min(seconds, left - 1.0)) if left is not None else seconds
        try:
            reply = self.sandbox.request({"op": "call", "source": source, "name": name, "where": self.cell_name,
                                          "args": list(args), "kwargs": dict(kwargs), "seconds": budget},
                                         seconds=budget + 3)
        except SandboxDied as err:
            self.dead = f"{err}, during {self.cell_name}"
            raise AssertionError(f"your code stopped the notebook's process: {err}") from None
        except BaseException:
            # The test's own time limit fired while the student's code ran: the channel is now
            # mid-answer, so the process cannot be used again.
            self.sandbox.close()
            self.dead = f"a test ran out of time in {self.cell_name} and the process was stopped"
            raise
        if "error" in reply:
            ename, evalue = (list(reply["error"]) + ["", ""])[:2]
            if ename == "_CellTimeout":
                raise grading.TimeLimitExceeded(f"your code took longer than {budget:.0f} s in this test: "
                                                "look for a loop that never ends")
            raise grading.StudentCodeError(str(ename), str(evalue))
        return reply.get("value")

    # -- grade_student_test
    def grade_student_test(self, test, assignment: str, cell: str, seconds: int) -> dict:
        name = test if isinstance(test, str) else getattr(test, "__name__", "")
        code, written = "", ""
        for c in self.notebook.cells:
            if c.cell_type == "code" and grade_id(c) == "your-test":
                code, written = _definitions(c.source), c.source
        # Still the released stub: say so, rather than "fails on a correct implementation" (read, not run).
        assert not grading.unwritten(written, name), grading.NOT_WRITTEN.format(name=name)
        variants = grading.variant_sources(self.root, assignment, cell)
        passed: dict = {}
        try:
            with Sandbox(self.limits, writable=False, sealed=self.sealed) as box:
                for bug, impl in variants.items():
                    reply = box.request({"op": "variant", "impl": impl, "test": code, "name": name,
                                         "prelude": PRELUDE, "seconds": seconds}, seconds=seconds + 10)
                    passed[bug] = reply.get("passed") is True
        except SandboxDied as err:
            raise AssertionError(f"your test stopped the process that grades it: {err}") from None
        return passed


class _Remote:
    def __init__(self, session: JudgeSession, name: str, source: str, seconds: float):
        self.session, self.__name__, self.source, self.seconds = session, name, source, seconds

    def __call__(self, *args, **kwargs):
        return self.session.call(self.__name__, self.source, self.seconds, args, kwargs)


def _run_test(session: JudgeSession, cell, index: int) -> list:
    session.cell_source, session.cell_name = cell.source, f"test cell {grade_id(cell) or index + 1}"
    out = io.StringIO()
    outputs = []
    namespace = {"__name__": "__test__"}
    previous = grading._judge
    grading._judge = session
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(cell.source, f"<{session.cell_name}>", "exec", dont_inherit=True), namespace)
    except BaseException as err:  # noqa: BLE001 (a failing test is an error output, as in a kernel)
        if isinstance(err, KeyboardInterrupt):
            raise
        outputs.append(_error(type(err).__name__, str(err)[:4000]))
    finally:
        grading._judge = previous
    text = out.getvalue()[:OUTPUT_LIMIT]
    if text:
        outputs.insert(0, {"output_type": "stream", "name": "stdout", "text": text})
    return outputs


def judge_notebook(nb, root: Path, sealed: bool = True, limits: Limits = Limits(),
                   cell_seconds: int = CELL_SECONDS) -> dict:
    """Execute `nb` as described above. Returns {"notebook", "problem", "seconds", "sandbox"}:
    `problem` says why the submission cannot be graded (its process died), else None."""
    start = time.monotonic()
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    problem, sandbox, described = None, None, "none"
    try:
        sandbox = Sandbox(limits, writable=True, sealed=sealed)
        described = sandbox.describe()
    except SandboxDied as err:
        problem = f"the sandbox did not start: {err}"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if is_test_cell(cell):
            continue
        where = f"cell {index + 1}" + (f" ({grade_id(cell)})" if grade_id(cell) else "")
        if problem:
            cell.outputs = [_error("NotRun", f"not run: {problem}")]
            continue
        try:
            reply = sandbox.request({"op": "cell", "code": cell.source, "where": f"<{where}>",
                                     "limit": OUTPUT_LIMIT, "seconds": cell_seconds}, seconds=cell_seconds + 15)
            cell.outputs = [nbformat.from_dict(o) for o in reply.get("outputs", [])]
        except SandboxDied as err:
            problem = f"the notebook's process stopped in {where}: {err}"
            cell.outputs = [_error("DeadKernel", problem)]
    session = JudgeSession(root, None if problem else sandbox, nb, sealed, limits)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and is_test_cell(cell):
            cell.outputs = [nbformat.from_dict(o) for o in _run_test(session, cell, index)]
    if session.dead and not problem and "ran out of time" not in session.dead:
        problem = f"the notebook's process stopped: {session.dead}"
    peak = None
    if sandbox is not None:
        sandbox.close()
        peak = sandbox.peak_mb
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
    return {"notebook": nb, "problem": problem, "seconds": round(time.monotonic() - start, 2),
            "sandbox": described, "sandbox_peak_mb": peak and round(peak)}


def judge_key(nb) -> str:
    """What the judge's result depends on: every cell's kind, code and grading role."""
    import hashlib
    cells = [[c.cell_type, c.source, grade_id(c) or "", is_test_cell(c)] for c in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def run_judge(job: dict, timeout: int = 3600) -> dict:
    """Judge one submission in a fresh grader process (what a worker, local or on a cluster,
    runs). job: {"root", "notebook", "sealed"} -> judge_notebook's result, JSON-ready."""
    import os
    import subprocess
    library = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([library, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "transformer_debug.authoring.judge"], input=json.dumps(job),
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"problem": f"the grader gave up after {timeout} s", "notebook": None}
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"problem": f"the grader failed on it (exit {proc.returncode}): {tail}", "notebook": None}
    return json.loads(proc.stdout)


def main() -> int:
    """Job on stdin: {"root", "notebook", "sealed"}. Result on stdout."""
    job = json.loads(sys.stdin.read())
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write into the result
    result = judge_notebook(nbformat.from_dict(job["notebook"]), Path(job["root"]), sealed=job.get("sealed", True))
    real_stdout.write(json.dumps(result))
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
