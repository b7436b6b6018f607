"""The bug catalog (bugs.toml) and its agreement with the markers in source/.

Every planted bug has one entry: where it lives, what kind of mistake it is, what the
student sees, why it happens, how to fix it, and which hidden test cells catch it. The
catalog is checked against the source notebooks both ways, so a typo in an id is an error
rather than a bug that silently never ships.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import markers

__all__ = ["CATEGORIES", "Bug", "Catalog", "CatalogError", "find_course_root", "source_notebook",
           "grade_id", "is_test_cell"]

CATALOG_FILE = "bugs.toml"

# The interview's classic list, plus "attention arithmetic" for the scale and softmax axis.
CATEGORIES = (
    "attention arithmetic", "causal masking", "positional encoding", "KV cache",
    "layer norm placement", "fp16 softmax", "warmup", "target shifting", "optimizer",
    "leakage/padding", "head reshaping/shape errors", "nondeterminism", "metrics",
    "mixed precision",
)
_TEXT_FIELDS = ("id", "notebook", "category", "title", "symptom", "root_cause", "fix")


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class Bug:
    id: str
    notebook: str           # the assignment, e.g. "01_attention"
    category: str
    title: str
    symptom: str            # what the student sees
    root_cause: str
    fix: str
    caught_by: tuple[str, ...]  # grade_ids of the hidden test cells that fail with this bug


def find_course_root(start: Path | str) -> Path:
    """The nearest folder at or above `start` that holds bugs.toml and source/."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / CATALOG_FILE).is_file() and (folder / "source").is_dir():
            return folder
    raise CatalogError(f"no course root (a folder with {CATALOG_FILE} and source/) at or above {start}")


def source_notebook(root: Path, assignment: str) -> Path:
    """source/<assignment>/ holds exactly one notebook."""
    found = sorted((Path(root) / "source" / assignment).glob("*.ipynb"))
    if len(found) != 1:
        raise CatalogError(f"source/{assignment}/ must hold exactly one notebook, found {len(found)}")
    return found[0]


def cell_location(path: Path, index: int) -> str:
    return f"{path}, cell {index + 1}"


def answer_cell(root: Path, assignment: str, cell: str) -> tuple[str, str]:
    """(where, source) of the one source cell whose grade_id is `cell`.

    Reads the JSON itself: the grader calls this in a student's kernel, where importing
    nbformat (and jsonschema with it) would cost a second or more per test.
    """
    path = source_notebook(root, assignment)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    matches = [(i, c) for i, c in enumerate(cells) if grade_id(c) == cell]
    if len(matches) != 1:
        raise markers.MarkerError(f"expected one cell with grade_id {cell!r}, found {len(matches)}",
                                  where=str(path))
    index, found = matches[0]
    source = found["source"]
    return cell_location(path, index), "".join(source) if isinstance(source, list) else source


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_test_cell(cell) -> bool:
    """An autograded test cell: graded, not a solution, a code cell."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade", False) and not meta.get("solution", False)


class Catalog:
    def __init__(self, root: Path, bugs: list[Bug]):
        self.root, self.bugs = Path(root), bugs

    @classmethod
    def load(cls, root: Path | str) -> "Catalog":
        root = Path(root)
        path = root / CATALOG_FILE
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise CatalogError(f"{path}: {err}") from err
        unknown = set(data) - {"bug"}
        if unknown:
            raise CatalogError(f"{path}: unknown top-level keys {sorted(unknown)}; use [[bug]] tables")
        bugs, seen = [], set()
        for n, entry in enumerate(data.get("bug", []), 1):
            where = f"{path}, bug #{n} ({entry.get('id', 'no id')})"
            missing = [f for f in (*_TEXT_FIELDS, "caught_by") if f not in entry]
            extra = set(entry) - {*_TEXT_FIELDS, "caught_by"}
            if missing or extra:
                raise CatalogError(f"{where}: missing {missing}, unknown {sorted(extra)}")
            if not all(isinstance(entry[f], str) and entry[f].strip() for f in _TEXT_FIELDS):
                raise CatalogError(f"{where}: every text field must be a non-empty string")
            if not markers.BUG_ID.fullmatch(entry["id"]):
                raise CatalogError(f"{where}: bad id; use lowercase words joined by '-'")
            if entry["id"] in seen:
                raise CatalogError(f"{where}: duplicate id")
            if entry["category"] not in CATEGORIES:
                raise CatalogError(f"{where}: unknown category {entry['category']!r}; one of {CATEGORIES}")
            caught_by = entry["caught_by"]
            if not (isinstance(caught_by, list) and caught_by and all(isinstance(c, str) for c in caught_by)):
                raise CatalogError(f"{where}: caught_by must be a non-empty list of grade ids")
            seen.add(entry["id"])
            bugs.append(Bug(**{**entry, "caught_by": tuple(caught_by)}))
        return cls(root, bugs)

    def get(self, bug_id: str) -> Bug:
        for bug in self.bugs:
            if bug.id == bug_id:
                return bug
        raise CatalogError(f"unknown bug id {bug_id!r}; known: {', '.join(b.id for b in self.bugs)}")

    def for_notebook(self, assignment: str) -> list[Bug]:
        return [bug for bug in self.bugs if bug.notebook == assignment]

    @property
    def assignments(self) -> list[str]:
        return sorted(p.name for p in (self.root / "source").iterdir()
                      if p.is_dir() and not p.name.startswith("."))

    def check(self) -> None:
        """Markers and catalog agree, in both directions; raise on the first disagreement."""
        for bug in self.bugs:
            if bug.notebook not in self.assignments:
                raise CatalogError(f"bug {bug.id!r}: notebook {bug.notebook!r} is not in source/")
        for assignment in self.assignments:
            path = source_notebook(self.root, assignment)
            import nbformat  # imported here: the grader loads this module in a student's kernel
            nb = nbformat.read(path, as_version=4)
            expected = {bug.id for bug in self.for_notebook(assignment)}
            marked, tests = set(), set()
            for index, cell in enumerate(nb.cells):
                where = f"{path.relative_to(self.root)}, cell {index + 1}"
                ids = markers.parse(cell.source, where).bug_ids
                for bug_id in ids:
                    if bug_id not in expected:
                        raise markers.MarkerError(
                            f"bug {bug_id!r} is not in {CATALOG_FILE} for {assignment!r}", where=where)
                if ids and not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                    raise markers.MarkerError("bug markers in a cell that is not an nbgrader solution "
                                              "cell", where=where)
                marked |= set(ids)
                if is_test_cell(cell):
                    tests.add(grade_id(cell))
            for bug_id in sorted(expected - marked):
                raise CatalogError(f"bug {bug_id!r} is in {CATALOG_FILE} but has no marker in {path}")
            for bug in self.for_notebook(assignment):
                unknown = set(bug.caught_by) - tests
                if unknown:
                    raise CatalogError(f"bug {bug.id!r}: caught_by names {sorted(unknown)}, which are "
                                       f"not autograded test cells of {path.name}")
