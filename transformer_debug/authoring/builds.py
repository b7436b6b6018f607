"""Build notebooks from one source: the executed solution, mutants, and graded submissions.

The release itself is built by nbgrader (`nbgrader generate_assignment`) with the
ReleaseBugs preprocessor; everything here works on the same source cells, so a bug's
fix, its planted form and its tests never drift apart.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from . import markers
from .catalog import answer_cell, cell_location as _where, grade_id, source_notebook

__all__ = ["read_source", "answer_cell", "solution_notebook", "execute", "as_submission", "bug_ids",
           "nbgrader", "copy_course", "SOLUTION_BANNER"]

SOLUTION_BANNER = ("> **Solution notebook**, generated from `{source}` by `make release`. "
                   "Edit the source, not this file.")


def read_source(root: Path, assignment: str) -> tuple[Path, nbformat.NotebookNode]:
    path = source_notebook(root, assignment)
    return path, nbformat.read(path, as_version=4)


def bug_ids(nb: nbformat.NotebookNode, path: Path = Path("notebook")) -> set[str]:
    return {b for i, c in enumerate(nb.cells) for b in markers.parse(c.source, _where(path, i)).bug_ids}


def solution_notebook(root: Path, assignment: str, bugs: frozenset[str] = frozenset(),
                      banner: bool = True) -> nbformat.NotebookNode:
    """The source with `bugs` planted (none: the full solution), markers gone, no outputs."""
    path, nb = read_source(root, assignment)
    unknown = set(bugs) - bug_ids(nb, path)
    if unknown:
        raise markers.MarkerError(f"unknown bug id(s) {sorted(unknown)} for {assignment}; "
                                  f"known: {sorted(bug_ids(nb, path))}", where=str(path))
    out = copy.deepcopy(nb)
    for index, cell in enumerate(out.cells):
        cell.source = markers.solution(cell.source, frozenset(bugs), _where(path, index))
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.metadata.pop("celltoolbar", None)
    if banner:
        rel = path.relative_to(root)
        note = SOLUTION_BANNER.format(source=rel)
        if bugs:
            note += f" Planted bug(s): {', '.join(sorted(bugs))}."
        out.cells.insert(0, nbformat.v4.new_markdown_cell(note, id="solution-banner"))
    return out


# Inline figures as IPython draws them (bbox "tight"), without the PNG's "Software" text
# (matplotlib's version), so a matplotlib upgrade alone changes no figure's bytes.
FIGURE_KWARGS = {"bbox_inches": "tight", "metadata": {"Software": None}}


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 120) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel, in `cwd`; raise on the first error."""
    # No timing metadata: rebuilding an unchanged source must change no byte.
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   extra_arguments=[f"--InlineBackend.print_figure_kwargs={FIGURE_KWARGS!r}"],
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def as_submission(release: nbformat.NotebookNode, source: nbformat.NotebookNode, source_path: Path,
                  planted: set[str], only_bug_cells: bool) -> nbformat.NotebookNode:
    """A student's notebook, built from the release.

    `only_bug_cells=False`: every answer cell holds the author's answer with `planted` bugs
    (the solution, or a single-bug mutant). `only_bug_cells=True`: only cells that carry
    bugs change, to the source with `planted` bugs; other answers stay as released stubs.
    """
    by_id = {grade_id(c): (i, c) for i, c in enumerate(source.cells) if grade_id(c)}
    out = copy.deepcopy(release)
    for cell in out.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("solution") or grade_id(cell) not in by_id:
            continue
        index, src = by_id[grade_id(cell)]
        where = _where(source_path, index)
        if only_bug_cells and not markers.parse(src.source, where).bug_ids:
            continue
        cell.source = markers.solution(src.source, frozenset(planted), where)
    return out


def nbgrader(root: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the nbgrader that sits beside this Python, in the course root."""
    exe = Path(sys.executable).with_name("nbgrader")
    cmd = [str(exe) if exe.exists() else "nbgrader", *args]
    # nbgrader runs `alembic` from PATH to set up the gradebook: put this venv's bin first.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def copy_course(root: Path, dest: Path) -> Path:
    """A throwaway copy of the course: sources, config, catalog and library, no grading state."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("nbgrader_config.py", "bugs.toml"):
        shutil.copy2(root / name, dest / name)
    shutil.copytree(root / "source", dest / "source",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return dest
