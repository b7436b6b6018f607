import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)  # tiny tensors: one thread is far faster than two here
# nbgrader runs `alembic` from PATH; make this venv's tools win.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture
def course(tmp_path):
    """A throwaway copy of the course (sources, config, catalog)."""
    from transformer_debug.authoring.builds import copy_course
    return copy_course(ROOT, tmp_path / "course")


def edit_cell(path: Path, grade_id: str, change) -> None:
    """Rewrite one cell's source of a notebook in place: change(source) -> source."""
    nb = nbformat.read(path, as_version=4)
    [cell] = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    cell.source = change(cell.source)
    nbformat.write(nb, path)



def graded_cells(assignment: str) -> dict[str, str]:
    """grade_id -> the code of each autograded test cell, hidden tests included, markers gone."""
    from transformer_debug.authoring.builds import read_source
    from transformer_debug.authoring.catalog import grade_id, is_test_cell
    from transformer_debug.authoring.markers import solution
    _, nb = read_source(ROOT, assignment)
    return {grade_id(c): solution(c.source) for c in nb.cells if is_test_cell(c)}


def answer_cell(assignment: str, cell: str, bugs=frozenset()) -> str:
    """The author's code of one answer cell, with `bugs` planted."""
    from transformer_debug.authoring import builds
    from transformer_debug.authoring.markers import solution
    where, source = builds.answer_cell(ROOT, assignment, cell)
    return solution(source, frozenset(bugs), where)


def run_graded_cells(assignment: str, names: dict, your_test: str) -> None:
    """Every autograded test cell of `assignment`, with `names` standing in for the answer cell.

    `names` maps what the answer cell defines (a class, a function) to another correct fix;
    `your_test` is the function that the author's model answer to "your test" defines, which
    must pass on that fix as well. Grading reads source/ from the course root, so run from
    release/<assignment>/ (the tests chdir there).
    """
    namespace = {}
    exec(answer_cell(assignment, "your-test"), namespace)
    namespace.update(names)
    namespace[your_test](type("impl", (), dict(names)))
    for cell, code in graded_cells(assignment).items():
        try:
            exec(code, dict(namespace))
        except Exception as err:  # noqa: BLE001 (report which cell and why)
            fix = ", ".join(getattr(v, "__name__", repr(v)) for v in names.values())
            pytest.fail(f"{cell} fails a correct fix ({fix}): {type(err).__name__}: {err}")


def points_lost(assignment: str, names: dict) -> dict[str, int]:
    """grade_id -> points, for every autograded test cell that fails with `names` standing in for
    the answer cell (a wrong fix must lose points). The cell grading the student's own test is left
    out: here it would grade the author's test, whatever `names` holds."""
    from transformer_debug.authoring.builds import read_source
    from transformer_debug.authoring.catalog import grade_id, is_test_cell
    _, nb = read_source(ROOT, assignment)
    points = {grade_id(c): c.metadata["nbgrader"]["points"] for c in nb.cells if is_test_cell(c)}
    lost = {}
    for cell, code in graded_cells(assignment).items():
        if cell == "hidden-your-test":
            continue
        try:
            exec(code, dict(names))
        except Exception:  # noqa: BLE001 (any failure loses the cell's points)
            lost[cell] = points[cell]
    return lost


SCREENSHOTS = pytest.StashKey[Path]()  # set by the browser test: where its screenshots are


def pytest_terminal_summary(terminalreporter, config):
    shots = config.stash.get(SCREENSHOTS, None)
    if shots is not None:
        terminalreporter.write_line(f"browser screenshots: {shots} ({len(list(shots.glob('*.png')))} files)")
        seconds = shots / "seconds.json"
        if seconds.exists():
            steps = json.loads(seconds.read_text())
            terminalreporter.write_line("browser steps: " + ", ".join(f"{k} {v} s" for k, v in steps.items()))


_SESSION = {}


def pytest_sessionstart(session):
    import time
    _SESSION["start"] = time.time()


def pytest_sessionfinish(session, exitstatus):
    """A full run (what `make test` runs) leaves its duration for `make bench`."""
    import time
    if list(session.config.args) == list(session.config.getini("testpaths")) and session.testscollected > 200:
        out = ROOT / "build" / "test-session.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"seconds": round(time.time() - _SESSION["start"]),
                                   "collected": session.testscollected,
                                   "passed": session.testscollected - session.testsfailed,
                                   "exitstatus": int(exitstatus)}) + "\n")
