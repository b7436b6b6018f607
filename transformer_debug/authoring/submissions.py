"""`make grade`: autograde every submission, generate feedback, export grades.

Each student is graded on their own, so one broken notebook cannot stop the others; the
broken ones are listed with the reason at the end and the command exits non-zero.
Submissions are never modified or deleted.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from .builds import nbgrader
from .catalog import Catalog

__all__ = ["problems_with", "grade_all"]


def problems_with(path: Path, expected: set[str]) -> list[str]:
    """Why nbgrader cannot grade this submission folder (empty list: it can)."""
    names = {p.name for p in path.glob("*.ipynb")}
    problems = [f"{path}: missing {name}" for name in sorted(expected - names)]
    for name in sorted(names & expected):
        try:
            nb = nbformat.read(path / name, as_version=4)
            nbformat.validate(nb)
        except (ValueError, nbformat.ValidationError, KeyError, AttributeError) as err:  # NotJSONError is a ValueError
            problems.append(f"{path / name}: not a valid notebook ({type(err).__name__}: {str(err)[:200]})")
            continue
        ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells]
        if len([i for i in ids if i]) != len({i for i in ids if i}):
            problems.append(f"{path / name}: duplicated graded cells (copied or pasted cells?)")
    return problems


def grade_all(root: Path) -> int:
    catalog = Catalog.load(root)
    submitted = root / "submitted"
    if not submitted.is_dir():
        print("nothing to grade: no submitted/ folder (collect submissions with nbgrader first)")
        return 0
    failures, graded = [], {}
    for assignment in catalog.assignments:
        expected = {p.name for p in (root / "source" / assignment).glob("*.ipynb")}
        for folder in sorted(submitted.glob(f"*/{assignment}")):
            student = folder.parent.name
            problems = problems_with(folder, expected)
            if not problems:
                proc = nbgrader(root, "autograde", assignment, "--student", student, "--force", check=False)
                if proc.returncode != 0:
                    tail = [l for l in (proc.stdout + proc.stderr).splitlines() if "ERROR" in l][-3:]
                    problems.append(f"{folder}: nbgrader autograde failed: " + " | ".join(tail))
            if problems:
                failures += problems
            else:
                graded.setdefault(assignment, []).append(student)
                print(f"graded {student} / {assignment}")
    for assignment in graded:
        # One call per assignment: it covers every student autograded above.
        nbgrader(root, "generate_feedback", assignment, "--force")
    if graded:
        nbgrader(root, "export", "--to", str(root / "grades.csv"))
        print(f"feedback in feedback/, grades in {root / 'grades.csv'}")
    for failure in failures:
        print(f"NOT GRADED {failure}")
    return 1 if failures else 0
