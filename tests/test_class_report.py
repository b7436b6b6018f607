"""After autograding: the grader's rubric (formgrader only, never in feedback), the class report,
and the feedback of a student who has not written their test. One small graded course serves all."""
import csv
import html
import os
import re

import nbformat
import pytest

from conftest import ROOT
from transformer_debug.authoring.builds import as_submission, copy_course, nbgrader, read_source
from transformer_debug.authoring.catalog import Catalog
from transformer_debug.authoring.classreport import fixed_bugs
from transformer_debug.authoring.cli import main
from transformer_debug.authoring.rubric import model_report
from transformer_debug.authoring.submissions import grade_all
from transformer_debug.sandbox import bwrap_available

A = "01_attention"
SCALE = "attention-missing-scale"
CATALOG = Catalog.load(ROOT)
BUGS = CATALOG.for_notebook(A)
needs_sandbox = pytest.mark.skipif(bwrap_available() is not None and not os.environ.get("COURSE_REQUIRE_SANDBOX"),
                                   reason=f"{bwrap_available()}")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """01_attention graded for alice (every bug fixed), bob (only the missing scale fixed) and carol
    (the release untouched); dave is on the roster and submitted nothing."""
    course = copy_course(ROOT, tmp_path_factory.mktemp("graded") / "course")
    nbgrader(course, "generate_assignment", A, "--force")
    nbgrader(course, "db", "student", "add", "dave")
    path, source = read_source(course, A)
    release = nbformat.read(course / "release" / A / path.name, as_version=4)
    everything = {b.id for b in BUGS}
    for student, nb in {"alice": as_submission(release, source, path, set(), only_bug_cells=False),
                        "bob": as_submission(release, source, path, everything - {SCALE}, only_bug_cells=False),
                        "carol": release}.items():
        (course / "submitted" / student / A).mkdir(parents=True)
        nbformat.write(nb, course / "submitted" / student / A / path.name)
    assert grade_all(course) == 0
    return course, path.stem


def _cells(course, student, stem):
    return nbformat.read(course / "autograded" / student / A / f"{stem}.ipynb", as_version=4).cells


def _feedback(course, student, stem):
    page = (course / "feedback" / student / A / f"{stem}.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.mark.slow
@needs_sandbox
def test_the_rubric_sits_under_the_defect_report_for_the_grader_only(graded):
    course, stem = graded
    for student in ("alice", "carol"):
        cells = _cells(course, student, stem)
        marked = [i for i, c in enumerate(cells) if c.metadata.get("transformer_debug", {}).get("grader_only")]
        report = [i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "defect-report"]
        assert len(marked) == 1 and marked[0] == report[0] + 1, (marked, report)
        rubric = cells[marked[0]]
        assert rubric.cell_type == "markdown" and "nbgrader" not in rubric.metadata
        for bug in BUGS:
            assert bug.title in rubric.source and f"`{bug.id}`" in rubric.source, bug.id
        assert "0.5 per bug" in rubric.source  # 2 points, 4 bugs
        assert model_report(ROOT, A).splitlines()[0] in rubric.source
        # The feedback has none of it: not the rubric, the catalog's explanations or the model answer.
        text = _feedback(course, student, stem)
        assert "Grader's rubric" not in text and "Model answer" not in text and "Caught by:" not in text
        if student == "carol":  # alice submitted the model answer as her own report: it is hers to see
            assert model_report(ROOT, A).splitlines()[0] not in text
            for bug in BUGS:
                assert bug.title not in text and bug.root_cause not in text


@pytest.mark.slow
@needs_sandbox
def test_feedback_says_an_unwritten_test_is_not_written(graded):
    course, stem = graded
    text = _feedback(course, "carol", stem)
    assert "your test is not written yet: test_attention still raises NotImplementedError" in text
    assert "fails on a correct implementation" not in text


def _report(course, capsys, *args):
    assert main(["--root", str(course), "class-report", *args]) == 0
    out = capsys.readouterr().out
    with open(course / "build" / "class-report.csv") as f:
        rows = {r["bug"]: r for r in csv.DictReader(f)}
    return out, rows


@pytest.mark.slow
@needs_sandbox
def test_class_report_counts_who_fixed_each_bug(graded, capsys):
    course, stem = graded
    before = (course / "gradebook.db").read_bytes()
    out, rows = _report(course, capsys)
    assert (course / "gradebook.db").read_bytes() == before  # read, never written
    assert set(rows) == {b.id for b in BUGS}
    # alice fixed all four, bob only the scale, carol nothing; dave submitted nothing and is not counted.
    counts = {bug: (int(r["fixed"]), int(r["graded"])) for bug, r in rows.items()}
    assert counts == {SCALE: (2, 3), **{b.id: (1, 3) for b in BUGS if b.id != SCALE}}
    assert list(rows)[-1] == SCALE  # least fixed first
    # 3 submitted; no report graded; carol's left blank (nbgrader's 0 for "no response"); 2 waiting.
    assert re.search(r"01_attention\s+3\s+0\s+1\s+2", out), out
    assert (course / "build" / "class-report.html").exists()

    # A grader scores alice's report in the formgrader: one graded, one waiting.
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "transformer-debug") as gb:
        grade = gb.find_grade("defect-report", stem, A, "alice")
        grade.manual_score, grade.needs_manual_grade = 1.5, False
        gb.db.commit()
    out, _ = _report(course, capsys, A)
    assert re.search(r"01_attention\s+3\s+1\s+1\s+1", out), out


@pytest.mark.slow
@needs_sandbox
def test_class_report_errors_are_clear(graded, tmp_path, capsys):
    course, _ = graded
    assert main(["--root", str(course), "class-report", "99_nothing"]) == 2
    assert "unknown assignment(s) ['99_nothing']" in capsys.readouterr().err
    assert main(["--root", str(course), "class-report", "02_masking"]) == 2
    assert "'02_masking' is not in the gradebook" in capsys.readouterr().err
    empty = copy_course(ROOT, tmp_path / "empty")
    assert main(["--root", str(empty), "class-report"]) == 2
    assert "no gradebook at" in capsys.readouterr().err
    assert not (empty / "gradebook.db").exists()


def test_a_shared_test_cell_is_blamed_on_the_bugs_still_there():
    cells = {c for b in BUGS for c in b.caught_by}
    everything_passes = {c: True for c in cells}
    assert fixed_bugs(BUGS, everything_passes) == {b.id for b in BUGS}
    # Only the scale fixed: its own cells pass; hidden-vs-torch fails, but the other three are still there.
    others = {c for b in BUGS if b.id != SCALE for c in b.caught_by}
    assert fixed_bugs(BUGS, {c: c not in others for c in cells}) == {SCALE}
    # Every bug's own cells pass, yet hidden-vs-torch (which all four share) fails: no bug is visibly
    # still there to blame, so no fix counts as complete.
    assert fixed_bugs(BUGS, {c: c != "hidden-vs-torch" for c in cells}) == set()


def test_add_rubric_and_drop_grader_notes_on_the_release():
    """Without grading: the rubric goes right under the report, a forged grader-only cell is dropped,
    and the feedback step removes the rubric again."""
    from transformer_debug.authoring.nbgrader_plugin import AddRubric, DropGraderNotes
    [path] = (ROOT / "release" / A).glob("*.ipynb")
    nb = nbformat.read(path, as_version=4)
    forged = nbformat.v4.new_markdown_cell("Rubric: give full points", metadata={"transformer_debug": {"grader_only": "x"}})
    nb.cells.insert(0, forged)
    resources = {"nbgrader": {"assignment": A, "student": "s", "notebook": path.stem},
                 "metadata": {"path": str(path.parent)}}
    nb, _ = AddRubric().preprocess(nb, resources)
    notes = [i for i, c in enumerate(nb.cells) if c.metadata.get("transformer_debug", {}).get("grader_only")]
    [report] = [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "defect-report"]
    assert notes == [report + 1] and "Rubric: give full points" not in "".join(c.source for c in nb.cells)
    count = len(nb.cells)
    nb, _ = DropGraderNotes().preprocess(nb, resources)
    assert len(nb.cells) == count - 1 and "Grader's rubric" not in "".join(c.source for c in nb.cells)
