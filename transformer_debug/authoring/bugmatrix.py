"""Grade every build of every notebook with real nbgrader, and check the course invariants.

For an assignment with bugs b1..bn, these "students" are autograded on a throwaway copy
of the course:
  solution        the author's answers, no bug          -> full marks on every test cell
  release         the untouched student release         -> 0 on every test cell tied to a bug
  only-<b>        the solution with bug b planted       -> fails exactly b's caught_by cells
  fixed-<b>       the release with only bug b fixed     -> passes a cell linked to b alone
  hostile-<a>     the release, plus attack a from tests/hostile/ (patching torch and the course
                  library, or the process that runs the notebook so that it echoes the grader's
                  inputs back)                          -> passes no cell the release fails
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from ..sandbox import bwrap_available
from . import markers
from .builds import as_submission, bug_ids, copy_course, nbgrader, read_source
from .catalog import Catalog, grade_id, is_test_cell

__all__ = ["Matrix", "grade_builds", "bug_matrix", "HOSTILE"]

# Attacks every notebook must withstand (the full set runs on notebook 01 in tests/test_hostile.py).
HOSTILE = {"hostile-echo": ["patch_runner.py"], "hostile-patched": ["patch_torch.py", "patch_library.py"]}


@dataclass
class Matrix:
    """Pass/fail of each hidden test cell, per build, for one assignment."""
    assignment: str
    cells: list[str]                                        # autograded test cells, in order
    results: dict[str, dict[str, bool]] = field(default_factory=dict)  # build -> cell -> passed


def _students(bugs: list[str]) -> dict[str, tuple[set[str], bool]]:
    """build name -> (planted bugs, only_bug_cells)."""
    everything = set(bugs)
    builds = {"solution": (set(), False)}
    for bug in bugs:
        builds[f"only-{bug}"] = ({bug}, False)
        builds[f"fixed-{bug}"] = (everything - {bug}, True)
    return builds


def grade_builds(root: Path, assignment: str, workdir: Path) -> Matrix:
    """Release the assignment in a copy of the course, submit every build, autograde them all."""
    course = copy_course(root, workdir / "course")
    nbgrader(course, "generate_assignment", assignment, "--force")
    source_path, source = read_source(course, assignment)
    release_path = course / "release" / assignment / source_path.name
    release = nbformat.read(release_path, as_version=4)
    bugs = sorted(bug_ids(source, source_path))
    builds = {name: as_submission(release, source, source_path, planted, only_bug_cells)
              for name, (planted, only_bug_cells) in _students(bugs).items()}
    builds["release"] = release
    bug_cells = {grade_id(c) for i, c in enumerate(source.cells) if markers.parse(c.source, f"cell {i}").bug_ids}
    for name, files in HOSTILE.items():
        attack = "\n\n".join((root / "tests" / "hostile" / f).read_text() for f in files)
        nb = copy.deepcopy(release)
        for cell in nb.cells:
            if grade_id(cell) in bug_cells:
                cell.source += "\n\n" + attack
        builds[name] = nb
    for name, nb in builds.items():
        target = course / "submitted" / name / assignment / source_path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    # Every build is judged in its own sandbox, one after another: the capstone's take many minutes.
    nbgrader(course, "autograde", assignment, "--force", timeout=6 * 3600)
    cells = [grade_id(c) for c in source.cells if is_test_cell(c)]
    matrix = Matrix(assignment, cells)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name in builds:
            nb_record = gb.find_submission_notebook(source_path.stem, assignment, name)
            grades = {g.name: g for g in nb_record.grades}
            matrix.results[name] = {c: grades[c].score == grades[c].max_score for c in cells}
    return matrix


def check(matrix: Matrix, catalog: Catalog) -> dict:
    """The invariants, per bug and for the whole notebook."""
    bugs = catalog.for_notebook(matrix.assignment)
    linked = {c: {b.id for b in bugs if c in b.caught_by} for c in matrix.cells}
    report = {"assignment": matrix.assignment, "cells": matrix.cells, "results": matrix.results,
              "bugs": {}}
    solution = matrix.results["solution"]
    release = matrix.results["release"]
    report["fixes_pass"] = all(solution.values())
    report["release_zero"] = all(not release[c] for c in matrix.cells if linked[c])
    report["hostile_no_gain"] = {name: sorted(c for c in matrix.cells if matrix.results[name][c] and not release[c])
                                 for name in HOSTILE if name in matrix.results}
    for bug in bugs:
        failing = {c for c, ok in matrix.results[f"only-{bug.id}"].items() if not ok}
        alone = [c for c in bug.caught_by if linked[c] == {bug.id}]
        report["bugs"][bug.id] = {
            "failing": sorted(failing),
            "caught_by": list(bug.caught_by),
            "caught": bool(failing) and failing == set(bug.caught_by),
            "isolated": any(matrix.results[f"fixed-{bug.id}"][c] for c in alone),
        }
    return report


def bug_matrix(root: Path, assignments: list[str] | None = None, jobs: int | None = None) -> list[dict]:
    """Grade every assignment's builds, `jobs` assignments at a time (default: one per CPU core;
    each nbgrader run is a single process with a one-thread kernel)."""
    catalog = Catalog.load(root)
    catalog.check()
    why = bwrap_available()
    if why:
        if os.environ.get("COURSE_REQUIRE_SANDBOX"):
            raise RuntimeError(f"cannot grade the builds sealed off: {why}")
        # The builds are the author's own code, so grading them unsealed is safe; but say so.
        os.environ["TRANSFORMER_DEBUG_SANDBOX"] = "off"
        print(f"note: {why}; grading the builds (the author's own code) without the sandbox", file=sys.stderr)
    todo = [a for a in assignments or catalog.assignments if catalog.for_notebook(a)]

    def grade(assignment: str) -> dict:
        workdir = Path(tempfile.mkdtemp(prefix=f"bugs-{assignment}-"))
        try:
            return check(grade_builds(root, assignment, workdir), catalog)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    jobs = jobs or min(4, len(os.sched_getaffinity(0)))
    # The assignments with the most builds first, so the slowest does not start last.
    slowest_first = sorted(todo, key=lambda a: -len(catalog.for_notebook(a)))
    with ThreadPoolExecutor(max_workers=max(1, min(len(todo), jobs))) as pool:
        reports = dict(zip(slowest_first, pool.map(grade, slowest_first)))
    return [reports[a] for a in todo]


def summary(reports: list[dict]) -> tuple[str, bool]:
    """A table per assignment, then one line: bugs, caught, isolated, fixes pass."""
    lines, n, caught, isolated = [], 0, 0, 0
    fixes = release_zero = hostile = True
    for r in reports:
        cells = r["cells"]
        lines.append(f"\n{r['assignment']}: rows are builds graded by nbgrader, columns autograded test cells "
                     f"(. pass, X fail)")
        for i, c in enumerate(cells):
            lines.append(f"  [{i}] {c}")
        width = max(len(b) for b in r["results"]) + 2
        lines.append(" " * width + " ".join(f"[{i}]" for i in range(len(cells))) + "  caught isolated")
        for build, res in r["results"].items():
            row = build.ljust(width) + " ".join(f" {'.' if res[c] else 'X'} " for c in cells)
            bug = build.removeprefix("only-")
            if build.startswith("only-"):
                b = r["bugs"][bug]
                row += f"  {'yes' if b['caught'] else 'NO':6} {'yes' if b['isolated'] else 'NO'}"
                if not b["caught"]:
                    row += f"   fails {b['failing']}, catalog says {b['caught_by']}"
            lines.append(row)
        n += len(r["bugs"])
        caught += sum(b["caught"] for b in r["bugs"].values())
        isolated += sum(b["isolated"] for b in r["bugs"].values())
        fixes = fixes and r["fixes_pass"]
        gains = {k: v for k, v in r.get("hostile_no_gain", {}).items() if v}
        hostile = hostile and not gains
        for name, cells_gained in gains.items():
            lines.append(f"  {name} passes cells the release fails: {cells_gained}")
        release_zero = release_zero and r["release_zero"]
    ok = caught == isolated == n and fixes and release_zero and hostile
    lines.append(f"untouched release scores 0 on every bug's tests: {'yes' if release_zero else 'NO'}")
    lines.append(f"hostile builds ({', '.join(HOSTILE)}) earn no more than the release: {'yes' if hostile else 'NO'}")
    lines.append(f"bugs: {n}, caught: {caught}, isolated: {isolated}, fixes pass: {'yes' if fixes else 'no'}")
    return "\n".join(lines), ok


def write_json(reports: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(reports, indent=2) + "\n")
