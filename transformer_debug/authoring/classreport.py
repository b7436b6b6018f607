"""The class report: for each planted bug, how many graded students fixed it.

Read from gradebook.db through nbgrader's Gradebook API, opened read-only (SQLite's mode=ro),
and from bugs.toml's `caught_by` (the test cells that fail when the bug alone is planted).

A bug counts as fixed when every one of its test cells earned full points, with one allowance:
a cell that other bugs fail as well (hidden-vs-torch catches all four bugs of 01_attention) is
not held against this bug when one of those other bugs is visibly still there, that is when one
of the cells only it fails lost points. Without it, a student who fixed one bug of four would
show as having fixed none. Every bug has such a cell of its own (`course bugs` proves that
fixing a bug alone earns points).

Students with no autograded submission are left out: not submitting is not failing to fix.
"""
from __future__ import annotations

import csv
import html
from dataclasses import dataclass
from pathlib import Path

from .catalog import Bug, Catalog, CatalogError, source_notebook
from .rubric import REPORT_CELL

__all__ = ["BugRow", "ReportRow", "class_report", "write_report", "table"]


@dataclass
class BugRow:
    assignment: str
    bug: str
    title: str
    fixed: int
    graded: int

    @property
    def rate(self) -> float | None:
        return self.fixed / self.graded if self.graded else None


@dataclass
class ReportRow:
    assignment: str
    submitted: int        # autograded submissions
    reports_graded: int   # defect reports a grader scored
    reports_blank: int    # left as released: nbgrader scored them 0 itself ("no response")
    reports_waiting: int  # defect reports no grader has scored yet


def _own_cells(bugs: list[Bug]) -> dict[str, set[str]]:
    """bug id -> the cells that fail for this bug and no other bug of the notebook."""
    return {b.id: set(b.caught_by) - {c for o in bugs if o.id != b.id for c in o.caught_by} for b in bugs}


def fixed_bugs(bugs: list[Bug], full: dict[str, bool]) -> set[str]:
    """The bugs one student fixed, from full[cell] (True: the cell earned all its points)."""
    own = _own_cells(bugs)
    still_there = {b.id for b in bugs if any(not full[c] for c in own[b.id])}
    fixed = set()
    for bug in bugs:
        if bug.id in still_there:
            continue
        failed = [c for c in bug.caught_by if not full[c]]
        if all(any(c in o.caught_by for o in bugs if o.id in still_there) for c in failed):
            fixed.add(bug.id)
    return fixed


def _open(root: Path):
    from nbgrader.api import Gradebook
    db = root / "gradebook.db"
    if not db.is_file():
        raise CatalogError(f"no gradebook at {db}: release the assignments and autograde the submissions "
                           "first (make release, then make grade)")
    from sqlalchemy.exc import SQLAlchemyError
    try:
        # mode=ro: this report never writes the gradebook, even by accident.
        return Gradebook(f"sqlite:///file:{db}?mode=ro&uri=true", "transformer-debug")
    except SQLAlchemyError as err:
        raise CatalogError(f"cannot read the gradebook {db}: {type(err).__name__}: {str(err)[:300]}") from None


def class_report(root: Path, catalog: Catalog, assignments: list[str] | None = None
                 ) -> tuple[list[BugRow], list[ReportRow]]:
    """Every bug of `assignments` (default: every released one) and each one's defect reports."""
    from nbgrader.api import MissingEntry
    bug_rows, report_rows = [], []
    with _open(root) as gb:
        released = {a.name for a in gb.assignments}
        if assignments is None:
            assignments = [a for a in catalog.assignments if a in released]
        for assignment in assignments:
            if assignment not in released:
                raise CatalogError(f"{assignment!r} is not in the gradebook (released: {sorted(released) or 'none'})"
                                   f"; run `nbgrader generate_assignment {assignment}` (make release) first")
            notebook = source_notebook(root, assignment).stem
            bugs = catalog.for_notebook(assignment)
            cells = {c for b in bugs for c in b.caught_by} | {REPORT_CELL}
            counts = {b.id: 0 for b in bugs}
            submitted = graded_reports = blank = waiting = 0
            for submission in gb.assignment_submissions(assignment):
                student = submission.student.id
                try:
                    grades = {c: gb.find_grade(c, notebook, assignment, student) for c in cells}
                except MissingEntry:
                    continue  # never autograded: no grades to read
                if any(grades[c].auto_score is None for c in cells - {REPORT_CELL}):
                    continue
                submitted += 1
                full = {c: (g.score or 0) >= g.max_score for c, g in grades.items()}
                for bug in fixed_bugs(bugs, full):
                    counts[bug] += 1
                report = grades[REPORT_CELL]
                if report.needs_manual_grade:
                    waiting += 1
                elif report.manual_score is None:
                    blank += 1
                else:
                    graded_reports += 1
            bug_rows += [BugRow(assignment, b.id, b.title, counts[b.id], submitted) for b in bugs]
            report_rows.append(ReportRow(assignment, submitted, graded_reports, blank, waiting))
    # Least fixed first; bugs nobody was graded on last.
    bug_rows.sort(key=lambda r: (r.rate is None, r.rate if r.rate is not None else 0, r.assignment, r.bug))
    return bug_rows, report_rows


def table(bug_rows: list[BugRow], report_rows: list[ReportRow]) -> str:
    lines = [f"{'fixed':>9}  {'assignment':<18} {'bug':<28} title"]
    for r in bug_rows:
        rate = f"{100 * r.rate:3.0f}%" if r.rate is not None else "  - "
        lines.append(f"{r.fixed:>3}/{r.graded:<3}{rate}  {r.assignment:<18} {r.bug:<28} {r.title}")
    lines += ["", f"{'assignment':<18} {'submitted':>9} {'reports graded':>14} {'blank (0)':>9} "
              f"{'awaiting a grader':>17}"]
    lines += [f"{r.assignment:<18} {r.submitted:>9} {r.reports_graded:>14} {r.reports_blank:>9} "
              f"{r.reports_waiting:>17}" for r in report_rows]
    return "\n".join(lines)


def write_report(bug_rows: list[BugRow], report_rows: list[ReportRow], out: Path) -> list[Path]:
    """<out>.csv (one row per bug) and <out>.html (both tables)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out.with_suffix(".csv"), out.with_suffix(".html")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["assignment", "bug", "title", "fixed", "graded", "fixed_fraction"])
        for r in bug_rows:
            writer.writerow([r.assignment, r.bug, r.title, r.fixed, r.graded,
                             "" if r.rate is None else f"{r.rate:.3f}"])
    e = html.escape
    bug_html = "".join(f"<tr><td>{e(r.assignment)}</td><td><code>{e(r.bug)}</code></td><td>{e(r.title)}</td>"
                       f"<td>{r.fixed} / {r.graded}</td></tr>" for r in bug_rows)
    report_html = "".join(f"<tr><td>{e(r.assignment)}</td><td>{r.submitted}</td><td>{r.reports_graded}</td>"
                          f"<td>{r.reports_blank}</td><td>{r.reports_waiting}</td></tr>" for r in report_rows)
    html_path.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Class report</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.2rem .6rem;"
        "border-bottom:1px solid #ddd;text-align:left}</style></head><body>\n"
        "<h1>Class report</h1><p>Which bugs the class fixed, least fixed first (graded submissions "
        "only).</p>\n<table><tr><th>assignment</th><th>bug</th><th>title</th><th>fixed</th></tr>"
        f"{bug_html}</table>\n<h2>Defect reports</h2><table><tr><th>assignment</th><th>submitted</th>"
        f"<th>graded</th><th>blank (0)</th><th>awaiting a grader</th></tr>{report_html}</table>\n"
        "</body></html>\n", encoding="utf-8")
    return [csv_path, html_path]
