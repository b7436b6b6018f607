"""Where every student stands on every released assignment: the table `make autograde`,
`make feedback` and `make export` print, the exported CSV, and the notes for submissions that
have no feedback of their own (missing, NOT GRADED).

Read-only on the gradebook: nbgrader (the single writer, writer.py) writes it.
"""
from __future__ import annotations

import contextlib
import csv
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Standing", "standings", "released_assignments", "print_table", "write_csv", "not_graded",
           "record_not_graded", "write_notes", "exchange_root", "COURSE_ID", "CSV_COLUMNS"]

COURSE_ID = "transformer-debug"
# nbgrader's own export columns first (same meaning), then what an instructor needs to act on.
CSV_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
               "raw_score", "late_submission_penalty", "score", "max_score",
               "status", "autograded_score", "autograded_max", "manual_score", "manual_max",
               "reports_awaiting_grader", "late", "seconds_late", "reason"]


@dataclass
class Standing:
    student: str
    assignment: str
    status: str                     # graded | awaiting grader | missing | NOT GRADED
    auto: float = 0.0
    auto_max: float = 0.0
    manual: float = 0.0
    manual_max: float = 0.0
    awaiting: int = 0               # manually graded cells nobody has graded yet
    seconds_late: float = 0.0
    timestamp: str = ""
    duedate: str = ""
    penalty: float = 0.0
    reason: str = ""
    names: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return max(0.0, self.auto + self.manual - self.penalty)


def exchange_root(root: Path) -> Path:
    """The exchange nbgrader_config.py uses (NBGRADER_EXCHANGE, else <course>/exchange)."""
    return Path(os.environ.get("NBGRADER_EXCHANGE", Path(root) / "exchange"))


def _submitted(root: Path) -> dict[str, set[str]]:
    """assignment -> students with a folder in submitted/."""
    found: dict[str, set[str]] = {}
    base = Path(root) / "submitted"
    if base.is_dir():
        for folder in base.glob("*/*"):
            if folder.is_dir():
                found.setdefault(folder.name, set()).add(folder.parent.name)
    return found


def released_assignments(root: Path, known: list[str]) -> list[str]:
    """Assignments students were given: released to the exchange, or with a submission."""
    outbound = exchange_root(root) / COURSE_ID / "outbound"
    submitted = _submitted(root)
    return [a for a in known if (outbound / a).is_dir() or submitted.get(a)]


def not_graded(root: Path) -> dict[str, str]:
    """"assignment/student" -> why the last autograde could not grade it."""
    try:
        return json.loads((Path(root) / "build" / "not_graded.json").read_text())
    except (OSError, ValueError):
        return {}


def record_not_graded(root: Path, done: set[tuple[str, str]], reasons: dict[tuple[str, str], str]) -> None:
    """Forget the submissions just processed (`done`), then record those that failed."""
    kept = {k: v for k, v in not_graded(root).items() if tuple(k.split("/", 1)) not in done}
    kept.update({f"{a}/{s}": r for (s, a), r in reasons.items()})
    path = Path(root) / "build" / "not_graded.json"
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept, indent=1, sort_keys=True))
    os.replace(tmp, path)


def standings(root: Path, assignments: list[str], students: list[str] | None = None) -> list[Standing]:
    """One row per student (the roster and whoever submitted) and released assignment."""
    from nbgrader.api import Gradebook, MissingEntry

    root = Path(root)
    submitted = _submitted(root)
    failed = not_graded(root)
    rows = []
    db = root / "gradebook.db"
    if not db.exists():
        raise RuntimeError(f"no gradebook at {db}: run `make release` first (it creates the gradebook and "
                           "its assignments), then `make autograde`")
    with Gradebook(f"sqlite:///{db}", COURSE_ID) as gb:
        roster = {s.id: s for s in gb.students}
        everyone = sorted(set(roster) | {s for a in assignments for s in submitted.get(a, ())})
        for assignment in assignments:
            try:
                due = gb.find_assignment(assignment).duedate
            except MissingEntry:
                due = None
            for student in everyone:
                if students and student not in students:
                    continue
                info = roster.get(student)
                row = Standing(student, assignment, "missing", duedate=str(due or ""),
                               names={"last_name": getattr(info, "last_name", "") or "",
                                      "first_name": getattr(info, "first_name", "") or "",
                                      "email": getattr(info, "email", "") or ""})
                reason = failed.get(f"{assignment}/{student}")
                try:
                    sub = gb.find_submission(assignment, student)
                except MissingEntry:
                    sub = None
                if reason:
                    row.status, row.reason = "NOT GRADED", reason
                elif sub is None and student in submitted.get(assignment, ()):
                    row.status, row.reason = "NOT GRADED", "collected but not autograded yet: run `make autograde`"
                if sub is not None:
                    row.timestamp = str(sub.timestamp or "")
                    row.seconds_late = sub.total_seconds_late
                    row.penalty = sub.late_submission_penalty or 0.0
                    for nb in sub.notebooks:
                        for grade in nb.grades:
                            if grade.cell_type == "code":
                                row.auto += grade.score or 0.0
                                row.auto_max += grade.max_score
                            else:
                                row.manual += grade.score or 0.0
                                row.manual_max += grade.max_score
                            row.awaiting += bool(grade.needs_manual_grade)
                    if not reason:
                        row.status = "awaiting grader" if row.awaiting else "graded"
                rows.append(row)
    return rows


def _points(value: float, top: float) -> str:
    return f"{value:g}/{top:g}" if top else "-"


def print_table(rows: list[Standing], title: str = "") -> None:
    """The class at a glance, then what needs doing."""
    if title:
        print(title)
    if not rows:
        print("(no students and no submissions yet)")
        return
    header = ("student", "assignment", "status", "autograded", "report(s)", "late")
    lines = [(r.student, r.assignment, r.status, _points(r.auto, r.auto_max),
              "awaiting grader" if r.awaiting else _points(r.manual, r.manual_max),
              f"{r.seconds_late / 3600:.1f} h" if r.seconds_late else "") for r in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    for line in (header, *lines):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    awaiting = sum(r.awaiting for r in rows)
    counts = {s: sum(r.status == s for r in rows) for s in ("graded", "awaiting grader", "missing", "NOT GRADED")}
    print(f"{counts['graded']} graded, {counts['awaiting grader']} awaiting a grader ({awaiting} report(s)), "
          f"{counts['missing']} missing, {counts['NOT GRADED']} NOT GRADED, "
          f"{sum(r.seconds_late > 0 for r in rows)} late")
    for r in rows:
        if r.status == "NOT GRADED":
            print(f"NOT GRADED {r.student} / {r.assignment}: {r.reason}")


def write_csv(rows: list[Standing], to: Path) -> None:
    """grades.csv: nbgrader's columns, then status, autograded and manual points apart, lateness."""
    to = Path(to)
    tmp = to.with_name(to.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        out = csv.DictWriter(f, CSV_COLUMNS)
        out.writeheader()
        for r in rows:
            out.writerow({"assignment": r.assignment, "duedate": r.duedate, "timestamp": r.timestamp,
                          "student_id": r.student, **r.names,
                          "raw_score": f"{r.auto + r.manual:g}", "late_submission_penalty": f"{r.penalty:g}",
                          "score": f"{r.score:g}", "max_score": f"{r.auto_max + r.manual_max:g}" if r.auto_max else "",
                          "status": r.status, "autograded_score": f"{r.auto:g}", "autograded_max": f"{r.auto_max:g}",
                          "manual_score": f"{r.manual:g}", "manual_max": f"{r.manual_max:g}",
                          "reports_awaiting_grader": r.awaiting, "late": "yes" if r.seconds_late > 0 else "no",
                          "seconds_late": f"{r.seconds_late:.0f}", "reason": r.reason})
    os.replace(tmp, to)


NOTE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{assignment}: {title}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>{assignment}: {title}</h1>
<p>{body}</p>
<p>Score: 0 (nothing could be graded). Questions? Reply to your instructor.</p>
</body></html>
"""


def write_notes(root: Path, rows: list[Standing]) -> list[Path]:
    """A feedback note for each missing or NOT GRADED submission (they have no notebook feedback).

    NOT GRADED: feedback/<student>/<assignment>/<notebook>.html, with the submission's
    timestamp.txt and submission_secret.txt, so `nbgrader release_feedback` releases it and the
    student's `fetch_feedback` finds it like any feedback. Missing: nothing was submitted, so the
    exchange cannot deliver a note; it is feedback/<student>/<assignment>/not-submitted.txt, for
    the instructor to send (release_feedback only picks up .html files).
    """
    root = Path(root)
    written = []
    for r in rows:
        folder = root / "feedback" / r.student / r.assignment
        if r.status != "missing":  # submitted late after all: the old note would now be wrong
            with contextlib.suppress(FileNotFoundError):
                (folder / "not-submitted.txt").unlink()
        if r.status == "missing":
            folder.mkdir(parents=True, exist_ok=True)
            due = f" (due {r.duedate})" if r.duedate else ""
            (folder / "not-submitted.txt").write_text(
                f"{r.assignment}: no submission from {r.student} was collected{due}, so it scores 0.\n"
                f"If you did submit, contact your instructor with the time you submitted.\n")
            written.append(folder / "not-submitted.txt")
        elif r.status == "NOT GRADED":
            submitted = root / "submitted" / r.student / r.assignment
            if submitted.is_symlink() or not submitted.is_dir():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("timestamp.txt", "submission_secret.txt"):
                if (submitted / name).is_file() and not (submitted / name).is_symlink():
                    (folder / name).write_bytes((submitted / name).read_bytes()[:1000])
            reason = r.reason.replace(str(root) + os.sep, "")  # the student needs no paths of the grader's
            for notebook in sorted((root / "source" / r.assignment).glob("*.ipynb")):
                page = folder / f"{notebook.stem}.html"
                page.write_text(NOTE.format(assignment=html.escape(r.assignment), title="not graded",
                                            body="Your submission could not be graded: " + html.escape(reason)
                                            + ". Fix it (start again from the released notebook if need be) and "
                                              "submit again, or ask your instructor."))
                written.append(page)
    return written
