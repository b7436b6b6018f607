"""The nbgrader preprocessor that releases buggy code instead of stubs.

nbgrader's ClearSolutions replaces every solution region with `raise NotImplementedError()`.
A debugging course wants the opposite for planted bugs: the student receives the broken
code to repair. `ReleaseBugs` swaps each fix/bug pair for the bug, then lets
ClearSolutions stub out the remaining, ordinary solution regions (the student's own test,
the defect report). nbgrader computes cell checksums after this step, so an untouched
buggy cell counts as "no response", as an untouched stub would.

nbgrader_config.py puts this class where ClearSolutions was in
GenerateAssignment.preprocessors.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbgrader import utils
from nbgrader.preprocessors import ClearSolutions, NbGraderPreprocessor

from . import markers
from .catalog import Catalog, find_course_root
from .rubric import GRADER_ONLY, REPORT_CELL, rubric_markdown

__all__ = ["ReleaseBugs", "HideHiddenTests", "JudgedExecute", "NotGraded", "AddRubric", "DropGraderNotes"]


class ReleaseBugs(ClearSolutions):
    """ClearSolutions that shows each planted bug in place of its fix."""

    def preprocess(self, nb, resources):
        meta = resources.get("metadata", {})
        self._notebook = Path(meta.get("path", ".")) / f"{meta.get('name', 'notebook')}.ipynb"
        assignment = self._notebook.parent.name
        catalog = Catalog.load(find_course_root(self._notebook))
        known = {bug.id for bug in catalog.for_notebook(assignment)}
        for index, cell in enumerate(nb.cells):
            where = f"{self._notebook}, cell {index + 1}"
            for bug_id in markers.parse(cell.source, where).bug_ids:
                if bug_id not in known:
                    raise markers.MarkerError(
                        f"bug {bug_id!r} is not in the catalog for {assignment!r} "
                        f"(known: {', '.join(sorted(known)) or 'none'})", where=where)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        where = f"{self._notebook}, cell {cell_index + 1}"
        parsed = markers.parse(cell.source, where)
        if not parsed.pairs:
            return super().preprocess_cell(cell, resources, cell_index)
        if not utils.is_solution(cell):
            raise markers.MarkerError("a planted bug sits in a cell that is not an nbgrader "
                                      "solution cell, so a student could not edit it", where=where)
        cell.source = markers.plant(cell.source, set(parsed.bug_ids), where)
        # Ordinary solution regions left in the same cell still become stubs.
        self._replace_solution_region(cell, resources["language"])
        return cell, resources


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback shows each hidden test's verdict and message, never its code.

    nbgrader puts the autograded notebook, hidden tests included, into the feedback HTML
    (nbgrader issue #917). This drops the hidden regions from test cells and cuts error
    tracebacks, which quote the failing line, down to the error and its message.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not utils.is_grade(cell):
            return cell, resources
        parsed = markers.parse(cell.source, f"feedback, cell {cell_index + 1}")
        hidden = {i for r in parsed.regions if r.kind == "hidden" for i in range(r.start, r.end + 1)}
        if hidden:
            kept = [line for i, line in enumerate(parsed.lines) if i not in hidden]
            cell.source = "\n".join(kept + ["# (the hidden tests ran here; their code stays hidden)"])
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


def _grader_only(cell) -> bool:
    return bool(cell.get("metadata", {}).get("transformer_debug", {}).get(GRADER_ONLY))


class DropGraderNotes(NbGraderPreprocessor):
    """Feedback leaves out every cell only the grader may see (the rubric and model answer)."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if not _grader_only(cell)]
        return nb, resources


class AddRubric(NbGraderPreprocessor):
    """Autograding puts the rubric and model answer right under the student's defect report.

    The formgrader shows the autograded notebook, so the grader reads both next to the cell they
    grade. The cell carries {"transformer_debug": {"grader_only": "rubric"}} and no nbgrader
    metadata (it is not graded); DropGraderNotes removes it from the feedback.
    """

    def preprocess(self, nb, resources):
        meta = resources["nbgrader"]
        root = find_course_root(Path(resources.get("metadata", {}).get("path", ".")))
        text = rubric_markdown(Catalog.load(root), meta["assignment"])
        # A submission cannot bring its own "rubric": any cell it marked grader-only is dropped.
        cells = [cell for cell in nb.cells if not _grader_only(cell)]
        reports = [i for i, cell in enumerate(cells) if utils.is_grade(cell) and
                   cell.metadata["nbgrader"].get("grade_id") == REPORT_CELL]
        if not reports:  # deleted by the student: the grade is theirs to lose, the rubric still shows
            text = f"**This submission has no `{REPORT_CELL}` cell.**\n\n" + text
        rubric = nbformat.v4.new_markdown_cell(text, metadata={"transformer_debug": {GRADER_ONLY: "rubric"}})
        cells.insert(reports[0] + 1 if reports else len(cells), rubric)
        nb.cells = cells
        return nb, resources


class NotGraded(Exception):
    """A submission that cannot be graded; `make grade` lists it with this reason."""


class JudgedExecute(NbGraderPreprocessor):
    """nbgrader's Execute, replaced: the notebook runs sealed off and the tests run outside it.

    `make grade` judges submissions beforehand, in parallel or on a cluster, and leaves each
    result in build/judged/; this step takes the result whose key matches the notebook nbgrader
    is about to execute, or judges it now. Either way nbgrader then scores the outputs, alone.
    """

    def preprocess(self, nb, resources):
        from .judge import judge_key, run_judge
        from .submissions import judged_path, read_judged, sandbox_mode, write_judged

        meta = resources["nbgrader"]
        root = find_course_root(Path(resources.get("metadata", {}).get("path", ".")))
        path = judged_path(root, meta["assignment"], meta["student"], meta["notebook"])
        key = judge_key(nb)
        result = read_judged(path, key)
        if result is None:
            sealed = sandbox_mode()
            result = run_judge({"root": str(root), "notebook": nb, "sealed": sealed})
            write_judged(path, key, result)
        if result.get("problem"):
            raise NotGraded(result["problem"])
        judged = result["notebook"]["cells"]
        if len(judged) != len(nb.cells) or any(a.source != b["source"] for a, b in zip(nb.cells, judged)):
            raise NotGraded("the judged notebook does not match the submission (rerun make grade)")
        for cell, done in zip(nb.cells, judged):
            if cell.cell_type == "code":
                cell.outputs = [nbformat.from_dict(o) for o in done.get("outputs", [])]
                cell.execution_count = done.get("execution_count")
        return nb, resources
