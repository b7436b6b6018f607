"""Bug markers in a source cell, and the three ways to render them.

A planted bug is a pair of regions: the fix between nbgrader's solution markers, and
right after it the buggy code, commented out, in a region named by the bug's id:

        ### BEGIN SOLUTION
        q = q.view(B, T, H, D).transpose(1, 2)   # (B, H, T, D)
        ### END SOLUTION
        ### BEGIN BUG attention-head-split
        # q = q.view(B, H, T, D)
        ### END BUG

The source runs as the fixed version because the bug is a comment. Rendering picks,
for every pair, the fix or the bug. A solution region with no bug after it is an
ordinary nbgrader solution (a stub for the student to fill) and is left alone here.

Anything that looks like a marker but is not exactly one is an error that names the
line: a silently skipped bug would give a release with a hole in it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "MarkerError", "Region", "Cell", "parse", "plant", "solution", "strip_hidden_tests",
    "BUG_ID",
]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
END_BUG = "### END BUG"
BUG_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_BEGIN_BUG = re.compile(r"### BEGIN BUG (\S+)")
# Near misses such as "## BEGIN SOLUTION", "### End Bug" or a marker after code on a line.
_MARKERISH = re.compile(r"#{2,}\s*(BEGIN|END)\b|\b(BEGIN|END)\s+(SOLUTION|BUG|HIDDEN)", re.IGNORECASE)


class MarkerError(ValueError):
    """A malformed marker, with where it is: file, cell and line (both 1-based)."""

    def __init__(self, message: str, *, where: str = "", line: int | None = None):
        self.message, self.where, self.line = message, where, line
        place = where + (f", line {line}" if line is not None else "")
        super().__init__(f"{place}: {message}" if place else message)


@dataclass
class Region:
    kind: str                  # "solution", "bug" or "hidden"
    start: int                 # index of the BEGIN line in the cell's lines
    end: int                   # index of the END line
    bug_id: str | None = None
    bug: "Region | None" = None  # for a solution region: the bug region paired with it


@dataclass
class Cell:
    lines: list[str]
    regions: list[Region] = field(default_factory=list)

    @property
    def bug_ids(self) -> list[str]:
        return [r.bug_id for r in self.regions if r.kind == "bug"]

    @property
    def pairs(self) -> list[Region]:
        return [r for r in self.regions if r.kind == "solution" and r.bug is not None]


def _kind_of(stripped: str, where: str, lineno: int) -> tuple[str, str | None] | None:
    """Classify one stripped line as a marker, plain code (None), or raise."""
    exact = {BEGIN_SOLUTION: ("begin", "solution"), END_SOLUTION: ("end", "solution"),
             BEGIN_HIDDEN: ("begin", "hidden"), END_HIDDEN: ("end", "hidden"),
             END_BUG: ("end", "bug")}
    if stripped in exact:
        return exact[stripped]
    m = _BEGIN_BUG.fullmatch(stripped)
    if m:
        if not BUG_ID.fullmatch(m.group(1)):
            raise MarkerError(f"bad bug id {m.group(1)!r}: use lowercase words joined by '-'",
                              where=where, line=lineno)
        return ("begin", "bug:" + m.group(1))
    if _MARKERISH.search(stripped):
        raise MarkerError(f"malformed marker {stripped!r}; expected one of {BEGIN_SOLUTION!r}, "
                          f"{END_SOLUTION!r}, '### BEGIN BUG <id>', {END_BUG!r}, "
                          f"{BEGIN_HIDDEN!r}, {END_HIDDEN!r}", where=where, line=lineno)
    return None


def parse(source: str, where: str = "") -> Cell:
    """Find the regions of one cell and check that they nest and pair correctly."""
    lines = source.split("\n")
    cell, open_region = Cell(lines), None
    for i, line in enumerate(lines):
        marker = _kind_of(line.strip(), where, i + 1)
        if marker is None:
            continue
        action, kind = marker
        if action == "begin":
            if open_region is not None:
                raise MarkerError(f"{line.strip()!r} inside an open {open_region.kind} region "
                                  f"(opened on line {open_region.start + 1}); regions do not nest",
                                  where=where, line=i + 1)
            bug_id = kind[4:] if kind.startswith("bug:") else None
            open_region = Region("bug" if bug_id else kind, i, -1, bug_id)
            if bug_id:
                _pair_bug(cell, open_region, where)
        else:
            if open_region is None or open_region.kind != kind:
                raise MarkerError(f"{line.strip()!r} without a matching BEGIN", where=where, line=i + 1)
            open_region.end = i
            cell.regions.append(open_region)
            open_region = None
    if open_region is not None:
        raise MarkerError(f"{lines[open_region.start].strip()!r} is never closed",
                          where=where, line=open_region.start + 1)
    for region in cell.regions:
        if region.kind == "bug":
            _check_commented(cell, region, where)
    return cell


def _pair_bug(cell: Cell, bug: Region, where: str) -> None:
    """A bug region must follow the END SOLUTION of its fix on the very next line."""
    previous = cell.regions[-1] if cell.regions else None
    if previous is None or previous.kind != "solution" or previous.end != bug.start - 1:
        raise MarkerError(f"bug {bug.bug_id!r} does not directly follow a solution region: put "
                          f"'### BEGIN BUG' on the line after '### END SOLUTION'",
                          where=where, line=bug.start + 1)
    if previous.bug is not None:
        raise MarkerError(f"solution region already paired with bug {previous.bug.bug_id!r}",
                          where=where, line=bug.start + 1)
    previous.bug = bug


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _check_commented(cell: Cell, bug: Region, where: str) -> None:
    indent = _indent(cell.lines[bug.start])
    for i in range(bug.start + 1, bug.end):
        line = cell.lines[i]
        if line.strip() and not line.startswith(indent + "#"):
            raise MarkerError(f"line in bug {bug.bug_id!r} is not commented out at the marker's "
                              f"indent ({len(indent)} spaces): {line!r}", where=where, line=i + 1)


def _uncomment(lines: list[str], indent: str) -> list[str]:
    out = []
    for line in lines:
        rest = line[len(indent) + 1:] if line.strip() else ""
        out.append(indent + (rest[1:] if rest.startswith(" ") else rest) if rest else "")
    return out


def plant(source: str, bugs: set[str] | frozenset[str], where: str = "") -> str:
    """Resolve every fix/bug pair: the bug's code if its id is in `bugs`, else the fix.

    Solution regions without a bug, and hidden-test regions, keep their markers.
    """
    cell = parse(source, where)
    out, i = [], 0
    for sol in cell.pairs:
        bug = sol.bug
        out += cell.lines[i:sol.start]
        if bug.bug_id in bugs:
            out += _uncomment(cell.lines[bug.start + 1:bug.end], _indent(cell.lines[bug.start]))
        else:
            out += cell.lines[sol.start + 1:sol.end]
        i = bug.end + 1
    out += cell.lines[i:]
    return "\n".join(out)


def _strip_markers(source: str, kinds: set[str], where: str) -> str:
    cell = parse(source, where)
    drop = {line for r in cell.regions if r.kind in kinds for line in (r.start, r.end)}
    return "\n".join(line for i, line in enumerate(cell.lines) if i not in drop)


def solution(source: str, bugs: set[str] | frozenset[str] = frozenset(), where: str = "") -> str:
    """The author's version with `bugs` planted: every marker gone, hidden tests kept."""
    return _strip_markers(plant(source, bugs, where), {"solution", "hidden"}, where)


def strip_hidden_tests(source: str, where: str = "") -> str:
    """Keep hidden tests as plain code, markers removed (for the executed solutions)."""
    return _strip_markers(source, {"hidden"}, where)
