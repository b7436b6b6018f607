"""The authoring rule that keeps verdicts out of the student's process (README, "For authors").

A graded test cell runs in the grader, where the notebook's names do not exist; only its
@sandboxed functions run beside the student's code. This lint reads every graded test cell of
every source notebook and fails on a cell that
  - reads a name the notebook defines, outside a @sandboxed function (the grader has no such
    name, and a student could rebind it);
  - gives a @sandboxed function a name of the test cell itself (it would not exist in the
    student's process; pass it as an argument, or list it in `uses=`);
  - still passes the student's test function itself to grade_student_test (pass its name).
"""
import ast
import builtins
import symtable

import nbformat
import pytest

from conftest import ROOT
from transformer_debug.authoring.catalog import is_test_cell
from transformer_debug.authoring.markers import solution

NOTEBOOKS = sorted(ROOT.glob("source/*/*.ipynb"))
BUILTINS = set(dir(builtins))


def _defined(table: symtable.SymbolTable) -> set[str]:
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}


def _sandboxed(tree: ast.AST) -> dict[tuple[str, int], set[str]]:
    """(name, line) of each @sandboxed function -> the names in its uses=(...)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                call = d if isinstance(d, ast.Call) else None
                name = (call.func if call else d)
                if isinstance(name, ast.Name) and name.id == "sandboxed":
                    uses = set()
                    for kw in call.keywords if call else []:
                        if kw.arg == "uses":
                            uses = {e.id for e in ast.walk(kw.value) if isinstance(e, ast.Name)}
                    found[node.name, node.lineno] = uses
    return found


def _globals_read(table: symtable.SymbolTable) -> set[str]:
    names = {s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global()}
    for child in table.get_children():
        names |= _globals_read(child)
    return names


def problems_in(code: str, notebook_names: set[str]) -> list[str]:
    tree = ast.parse(code)
    top = symtable.symtable(code, "<test cell>", "exec")
    cell_names = _defined(top)
    sandboxed = _sandboxed(tree)
    problems = []
    outside = {s.get_name() for s in top.get_symbols() if s.is_referenced() and not (s.is_assigned() or s.is_imported())}

    def visit(table):
        for child in table.get_children():
            key = (child.get_name(), child.get_lineno())
            if child.get_type() == "function" and key in sandboxed:
                for name in sorted(_globals_read(child) - BUILTINS - sandboxed[key]):
                    if name in cell_names:
                        problems.append(f"@sandboxed {child.get_name()} uses {name!r} of the test cell: "
                                        "pass it as an argument (or list it in uses=)")
                    elif name not in notebook_names:
                        problems.append(f"@sandboxed {child.get_name()} uses {name!r}, which the notebook "
                                        "does not define")
            else:
                outside.update(_globals_read(child) - _defined(top))
                visit(child)
    visit(top)
    for name in sorted(outside - cell_names - BUILTINS):
        problems.append(f"reads {name!r} from the notebook outside a @sandboxed function")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "grade_student_test"
                and node.args and not isinstance(node.args[0], ast.Constant)):
            problems.append("grade_student_test gets the student's function itself: pass its name, a string")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_graded_cells_decide_outside_the_student_process(path):
    nb = nbformat.read(path, as_version=4)
    notebook_names = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_test_cell(cell):
            with pytest.MonkeyPatch.context():
                try:
                    notebook_names |= _defined(symtable.symtable(solution(cell.source), "<cell>", "exec"))
                except SyntaxError:
                    pass
    problems = []
    for cell in nb.cells:
        if cell.cell_type == "code" and is_test_cell(cell):
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            problems += [f"{grade_id}: {p}" for p in problems_in(solution(cell.source), notebook_names)]
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_the_lint_can_fail():
    notebook = {"MultiHeadAttention", "train"}
    assert problems_in("x = 1\nassert train(x)\n", notebook) == [
        "reads 'train' from the notebook outside a @sandboxed function"]
    bad = ("from transformer_debug.grading import sandboxed\nB = 2\n"
           "@sandboxed\ndef f(x):\n    return MultiHeadAttention(B, 1)(x)\n")
    assert problems_in(bad, notebook) == [
        "@sandboxed f uses 'B' of the test cell: pass it as an argument (or list it in uses=)"]
    good = ("from transformer_debug.grading import sandboxed\nimport torch\n"
            "@sandboxed\ndef f(x, b):\n    import torch\n    return MultiHeadAttention(b, 1)(x)\n"
            "y = f(torch.ones(1), 2)\n")
    assert problems_in(good, notebook) == []
    assert problems_in("from transformer_debug.grading import grade_student_test\n"
                       "grade_student_test(test_x, assignment='a', cell='c')\n", {"test_x"}) == [
        "reads 'test_x' from the notebook outside a @sandboxed function",
        "grade_student_test gets the student's function itself: pass its name, a string"]
