"""Hostile submissions against `make grade` (issue 11): none earns more than the untouched release,
the honest students graded in the same run keep exactly their scores, and nothing outside the
grader's own outputs changes.

Each file in tests/hostile/ is one attack; its code goes into the answer cell (after the planted
bugs, which stay in) or, for the ones named your_test_*, replaces the student's test cell.
"""
import csv
import hashlib
import html
import re
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from transformer_debug.authoring import markers
from transformer_debug.authoring.builds import as_submission, copy_course, nbgrader, read_source
from transformer_debug.authoring.submissions import grade_all
from transformer_debug.sandbox import bwrap_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bwrap_available() is not None and not os.environ.get("COURSE_REQUIRE_SANDBOX"),
                                 reason=f"{bwrap_available()}")]
ATTACKS = sorted((ROOT / "tests" / "hostile").glob("*.py"))
A = "01_attention"
GRADER_OUTPUTS = ("autograded", "feedback", "gradebook.db", "grades.csv", "build", "release")


def _cell(nb, grade_id):
    [cell] = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return cell


def _snapshot(course: Path) -> dict[str, str]:
    """Every file the grader must not change (its own outputs excluded), with its hash."""
    files = {}
    for path in sorted(course.rglob("*")):
        rel = path.relative_to(course)
        if path.is_file() and rel.parts[0] not in GRADER_OUTPUTS and "__pycache__" not in rel.parts:
            files[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _scores(course: Path) -> dict[str, float]:
    with open(course / "grades.csv") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f) if row["assignment"] == A}


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    course = copy_course(ROOT, tmp_path_factory.mktemp("hostile") / "course")
    nbgrader(course, "generate_assignment", A, "--force")
    path, source = read_source(course, A)
    release = nbformat.read(course / "release" / A / path.name, as_version=4)
    return course, path, source, release


def _submit(course, name, nb, filename):
    folder = course / "submitted" / name / A
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / filename)


def test_hostile_submissions_earn_nothing_and_touch_nothing(released, capsys):
    course, path, source, release = released
    solution = as_submission(release, source, path, set(), only_bug_cells=False)
    _submit(course, "alice", solution, path.name)           # honest, everything fixed
    _submit(course, "carol", release, path.name)            # honest, untouched
    for attack in ATTACKS:
        nb = nbformat.from_dict(release)
        code = attack.read_text()
        if attack.stem.startswith("your_test"):
            nb = nbformat.from_dict(solution)  # even with every fix in, a cheating test earns nothing
            _cell(nb, "your-test").source = code
        else:
            _cell(nb, "attention-code").source += "\n\n" + code
        _submit(course, attack.stem.replace("_", "-"), nb, path.name)
    # Not notebooks nbgrader could grade: each one is listed, none is a silent 0.
    (course / "submitted" / "empty" / A).mkdir(parents=True)
    (course / "submitted" / "empty" / A / path.name).write_text("")
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source) for c in solution.cells
                                           if c.cell_type == "code"])
    _submit(course, "no-metadata", bare, path.name)
    (course / "submitted" / "symlink" / A).mkdir(parents=True)
    (course / "submitted" / "symlink" / A / path.name).symlink_to(course / "source" / A / path.name)
    before = _snapshot(course)

    start = time.perf_counter()
    grade_all(course, workers=2)
    out = capsys.readouterr().out
    print(out)
    print(f"graded {len(ATTACKS) + 5} submissions in {time.perf_counter() - start:.0f} s")

    scores = _scores(course)
    full = sum(c.metadata["nbgrader"]["points"] for c in source.cells
               if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")
    assert scores["alice"] == full and scores["carol"] == 0, scores
    your_test = _cell(source, "hidden-your-test").metadata["nbgrader"]["points"]
    for attack in ATTACKS:
        name = attack.stem.replace("_", "-")
        # The your_test attacks carry every fix: all they may earn is the rest of the solution.
        ceiling = full - your_test if attack.stem.startswith("your_test") else scores["carol"]
        assert scores.get(name, 0) <= ceiling, f"{attack.name} earned {scores[name]}"
        graded = name in scores and f"NOT GRADED {name} /" not in out
        assert graded or f"NOT GRADED {name} / {A}: " in out, f"{name} is neither graded nor listed"
    for name in ("empty", "no-metadata", "symlink"):
        assert f"NOT GRADED {name} / {A}: " in out
    assert "no nbgrader cell metadata" in out and "symbolic link" in out
    # A process that ends itself or runs out of memory is listed with what happened, not a silent 0.
    for name in ("exit-kernel", "memory-bomb"):
        line = next(l for l in out.splitlines() if l.startswith(f"NOT GRADED {name} /"))
        assert "the notebook's process stopped in cell" in line and "exited with status" in line, line
    assert _snapshot(course) == before, "a file outside the grader's outputs changed"
    time.sleep(1)
    assert "hacked" not in (course / "grades.csv").read_text()
    # The hidden tests stay hidden, even from a submission that went looking for them.
    page = html.unescape(re.sub(r"<[^>]+>", "", (course / "feedback" / "read-solution" / A / f"{path.stem}.html").read_text()))
    public = {l.strip() for c in release.cells for l in c.source.splitlines()}
    hidden = set()
    for cell in source.cells:
        parsed = markers.parse(cell.source)
        for region in parsed.regions:
            if region.kind == "hidden":
                hidden |= {l.strip() for l in parsed.lines[region.start + 1:region.end] if len(l.strip()) > 30}
    leaked = [line for line in sorted(hidden - public) if line in page]
    assert not leaked, f"hidden test lines in the feedback: {leaked[:3]}"


def test_grades_are_the_same_serial_parallel_and_on_a_dask_cluster(tmp_path):
    results = {}
    for how, kwargs in {"serial": {"workers": 1}, "dask": {"local_cluster": 2}}.items():
        course = copy_course(ROOT, tmp_path / how)
        nbgrader(course, "generate_assignment", A, "--force")
        path, source = read_source(course, A)
        release = nbformat.read(course / "release" / A / path.name, as_version=4)
        _submit(course, "alice", as_submission(release, source, path, set(), False), path.name)
        _submit(course, "bob", as_submission(release, source, path, {"attention-head-split"}, False), path.name)
        _submit(course, "carol", release, path.name)
        assert grade_all(course, **kwargs) == 0
        results[how] = _scores(course)
    assert results["serial"] == results["dask"]
    assert results["serial"]["alice"] > results["serial"]["bob"] > results["serial"]["carol"] == 0


def test_a_killed_grader_resumes_and_loses_nothing(released, tmp_path):
    course = copy_course(ROOT, tmp_path / "course")
    nbgrader(course, "generate_assignment", A, "--force")
    path, source = read_source(course, A)
    release = nbformat.read(course / "release" / A / path.name, as_version=4)
    for name in ("ann", "ben", "cat"):
        _submit(course, name, as_submission(release, source, path, set(), False), path.name)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "transformer_debug.authoring.cli", "--root", str(course), "grade"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    for line in proc.stdout:
        if line.startswith("judged "):
            os.killpg(proc.pid, signal.SIGKILL)  # kill -9, mid-run, the grader and its children
            break
    proc.wait()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already judged" in again.stdout
    scores = _scores(course)
    assert set(scores) == {"ann", "ben", "cat"} and len(set(scores.values())) == 1 and scores["ann"] > 0


def test_make_grade_refuses_to_run_unsealed_without_being_told(tmp_path, monkeypatch):
    course = copy_course(ROOT, tmp_path / "course")
    (course / "submitted").mkdir()
    monkeypatch.setattr("transformer_debug.authoring.submissions.bwrap_available", lambda: "no bwrap here")
    with pytest.raises(RuntimeError, match="no bwrap here.*--no-sandbox"):
        grade_all(course)
