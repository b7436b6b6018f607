"""Checks on generated notebooks: the release leaks nothing, and both outputs match source/."""
from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat

from . import markers
from .builds import copy_course, nbgrader, read_source, solution_notebook
from .catalog import grade_id

__all__ = ["leaks", "out_of_sync", "STUBS"]

# What nbgrader's ClearSolutions puts in place of an ordinary solution region.
STUBS = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.split("\n") if line.strip()}


def _student_view(source: str, where: str = "") -> str:
    """The cell with its bugs planted and every remaining region (and marker) removed."""
    planted = markers.plant(source, set(markers.parse(source, where).bug_ids), where)
    parsed = markers.parse(planted, where)
    drop = {i for r in parsed.regions for i in range(r.start, r.end + 1)}
    return "\n".join(line for i, line in enumerate(parsed.lines) if i not in drop)


def leaks(root: Path, assignment: str, release: nbformat.NotebookNode) -> list[str]:
    """Everything in `release` a student must not see, as messages (empty: clean).

    A line is secret if it appears in a solution or hidden-test region of the source and
    nowhere a student is meant to see (outside those regions, or in the planted bug code).
    """
    path, source = read_source(root, assignment)
    secret, public = set(), set(STUBS)
    problems = []
    for index, cell in enumerate(source.cells):
        where = f"{path}, cell {index + 1}"
        parsed = markers.parse(cell.source, where)
        for region in parsed.regions:
            if region.kind in ("solution", "hidden"):
                secret |= _lines("\n".join(parsed.lines[region.start + 1:region.end]))
        public |= _lines(_student_view(cell.source, where))
    secret -= public
    release_text = set()
    for index, cell in enumerate(release.cells):
        where = f"release/{assignment}, cell {index + 1}"
        try:
            if markers.parse(cell.source, where).regions:
                problems.append(f"{where}: markers left in the release")
        except markers.MarkerError as err:
            problems.append(f"{where}: marker-like text left in the release ({err.message})")
        release_text |= _lines(cell.source)
        if cell.cell_type == "code" and cell.get("outputs"):
            problems.append(f"{where}: the release carries outputs")
    for line in sorted(secret & release_text):
        problems.append(f"release/{assignment}: solution or hidden-test line leaked: {line!r}")
    source_by_id = {grade_id(c): c for c in source.cells if grade_id(c)}
    for cell in release.cells:
        src = source_by_id.get(grade_id(cell))
        parsed = markers.parse(src.source) if src is not None else None
        if parsed is None or not parsed.bug_ids:
            continue
        ordinary = [r for r in parsed.regions if r.kind == "solution" and r.bug is None]
        if "NotImplementedError" in cell.source and not ordinary:
            problems.append(f"release/{assignment}, cell {grade_id(cell)}: a stub where the planted bug should be")
        if _lines(_student_view(src.source)) - _lines(cell.source):
            problems.append(f"release/{assignment}, cell {grade_id(cell)}: planted bug code is missing")
    return problems


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def out_of_sync(root: Path, assignments: list[str]) -> list[str]:
    """Rebuild release/ (with nbgrader, in a copy) and notebooks/ (sources only); list differences."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="sync-") as tmp:
        course = copy_course(root, Path(tmp) / "course")
        for assignment in assignments:
            nbgrader(course, "generate_assignment", assignment, "--force")
            path, _ = read_source(root, assignment)
            for kind, fresh in (
                ("release", nbformat.read(course / "release" / assignment / path.name, as_version=4)),
                ("notebooks", solution_notebook(root, assignment)),
            ):
                committed_path = root / kind / assignment / path.name
                if not committed_path.exists():
                    problems.append(f"{kind}/{assignment}/{path.name} is missing: run `make release`")
                    continue
                committed = nbformat.read(committed_path, as_version=4)
                if _cells(committed) != _cells(fresh):
                    changed = [i + 1 for i, (a, b) in enumerate(zip(_cells(committed), _cells(fresh)))
                               if a != b]
                    problems.append(f"{kind}/{assignment}/{path.name} is out of date with {path.relative_to(root)} "
                                    f"(cells {changed or 'added or removed'}): run `make release`")
    return problems
