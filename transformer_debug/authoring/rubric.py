"""The defect report's rubric and model answer, for graders (and, after the deadline, students).

Every notebook ends with a manually graded markdown cell, `defect-report`. Its points are split
evenly across the notebook's bugs in bugs.toml; each bug's share is earned by explaining it the
way the catalog does (the bug named, its root cause, a fix, how it was detected). The model
answer is the author's text of that cell in source/.

`rubric_markdown` is what the grader sees under the student's report in the formgrader
(nbgrader_plugin.AddRubric); the feedback drops it again (nbgrader_plugin.DropGraderNotes).
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from . import markers
from .catalog import Bug, Catalog, CatalogError, grade_id, source_notebook

__all__ = ["REPORT_CELL", "GRADER_ONLY", "report_cell", "model_report", "share", "rubric_markdown"]

REPORT_CELL = "defect-report"
# Cell metadata key that marks a cell only the grader may see: {"transformer_debug": {"grader_only": ...}}.
GRADER_ONLY = "grader_only"

PARTS = ("names the bug (what went wrong, in the student's words)", "explains its root cause",
         "gives a fix", "says how it was detected (symptom, probe or test)")


def report_cell(root: Path, assignment: str) -> tuple[str, float]:
    """(source, points) of the source notebook's defect report cell."""
    path = source_notebook(root, assignment)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = [c for c in cells if grade_id(c) == REPORT_CELL]
    if len(found) != 1:
        raise CatalogError(f"{path}: expected one cell with grade_id {REPORT_CELL!r}, found {len(found)}")
    meta = found[0]["metadata"]["nbgrader"]
    if found[0]["cell_type"] != "markdown" or not meta.get("grade") or not meta.get("points"):
        raise CatalogError(f"{path}: the {REPORT_CELL!r} cell must be a graded markdown cell with points")
    source = found[0]["source"]
    return "".join(source) if isinstance(source, list) else source, float(meta["points"])


def model_report(root: Path, assignment: str) -> str:
    """The author's defect report (the solution region of the cell, markers gone)."""
    source, _ = report_cell(root, assignment)
    return markers.solution(source, where=f"{assignment}, cell {REPORT_CELL}").strip()


def share(points: float, bugs: list[Bug]) -> float:
    if not bugs:
        raise CatalogError("a defect report rubric needs at least one bug in the catalog")
    return points / len(bugs)


def _text(value: str) -> str:
    # Catalog text goes into markdown that the formgrader renders as HTML: '<' and '&' stay literal.
    return html.escape(value, quote=False)


def rubric_markdown(catalog: Catalog, assignment: str) -> str:
    """The grader's rubric for one notebook's defect report, then the model answer."""
    bugs = catalog.for_notebook(assignment)
    _, points = report_cell(catalog.root, assignment)
    each = share(points, bugs)
    quarter = each / len(PARTS)
    lines = [
        f"### Grader's rubric: defect report ({points:.3g} points, {each:.3g} per bug)",
        "",
        "*Only graders see this cell: the feedback leaves it out.*",
        "",
        f"Each of the {len(bugs)} bugs earns {each:.3g} points: {quarter:.3g} each when the report "
        + "; ".join(PARTS) + ". Any correct fix counts, not only the one below; the student's own words "
        "are fine.",
        "",
        "**Partial credit.** A bug named with a plausible fix but a wrong or missing root cause earns half "
        "its share (two of the four parts). A root cause that merely restates the symptom (\"the loss was too low\") earns nothing "
        "for that part. A bug not mentioned earns nothing; bugs that are not in the list below earn "
        "nothing either, however well explained.",
        "",
    ]
    for n, bug in enumerate(bugs, 1):
        lines += [
            f"{n}. **{_text(bug.title)}** (`{bug.id}`, {_text(bug.category)}), {each:.3g} points",
            f"   - *Symptom:* {_text(bug.symptom)}",
            f"   - *Root cause:* {_text(bug.root_cause)}",
            f"   - *Fix:* {_text(bug.fix)}",
            f"   - *Caught by:* {', '.join(f'`{c}`' for c in bug.caught_by)}",
        ]
    lines += ["", "#### Model answer (the author's report)", "", model_report(catalog.root, assignment)]
    return "\n".join(lines) + "\n"
