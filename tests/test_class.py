"""README, "Running a class", walked as written: three students, two assignments, nbgrader's real
exchange (a throwaway folder), every command taken from the README's `<!-- walk: ... -->` blocks.

The README is the script. What the test changes, and why:
- the exchange path (/srv/nbgrader/exchange) becomes a temporary folder;
- each student is a home folder, and their nbgrader_config.py also names their student id,
  standing in for separate logins (nbgrader takes the id from the login);
- `pip install -r requirements.txt` installs only the kit's wheel (torch and Jupyter are this
  environment's already); `jupyter lab` is the test writing the student's answers;
- 01 is due in the future and 02 in the past (so 02's submissions are late);
- the formgrader's manual grades are saved with nbgrader's Gradebook API, as the formgrader does.
Students: ada fixes everything, ben fixes one bug of 01 and hands in a broken file for 02, cy
changes nothing in 01 and never submits 02.
"""
import csv
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from transformer_debug.authoring.builds import as_submission, copy_course, read_source
from transformer_debug.authoring.catalog import Catalog
from transformer_debug.sandbox import bwrap_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bwrap_available() is not None and not os.environ.get("COURSE_REQUIRE_SANDBOX"),
                                 reason=f"{bwrap_available()}")]

README_EXCHANGE = "/srv/nbgrader/exchange"
WALK = re.compile(r"<!-- walk: (?P<who>\w+) -->\s*```\w*\n(?P<body>.*?)```", re.S)
ASSIGNMENTS = ("01_attention", "02_masking")


def readme_blocks() -> list[tuple[str, str]]:
    blocks = [(m["who"], m["body"]) for m in WALK.finditer((ROOT / "README.md").read_text())]
    assert [who for who, _ in blocks] == ["instructor", "roster", "student", "instructor", "student", "instructor",
                                          "instructor", "student"], "README's walk blocks changed: update this test"
    return blocks


class Walk:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.exchange = tmp / "exchange"
        self.course = copy_course(ROOT, tmp / "course")
        for name in ("Makefile", "requirements.txt", "pyproject.toml"):
            shutil.copy(ROOT / name, self.course / name)
            os.utime(self.course / name, (0, 0))  # older than .venv's stamp: make installs nothing
        for name in ("release", "notebooks"):
            shutil.copytree(ROOT / name, self.course / name)
        (self.course / ".venv").symlink_to(ROOT / ".venv")
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                    "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        self.env["NBGRADER_EXCHANGE"] = str(self.exchange)  # the README's export, as in the instructor's profile
        self.seconds: dict[str, float] = {}

    def run(self, script: str, cwd: Path, env: dict, step: str, ok=(0,)) -> str:
        script = script.replace(README_EXCHANGE, str(self.exchange))
        start = time.perf_counter()
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=900)
        self.seconds[step] = self.seconds.get(step, 0) + time.perf_counter() - start
        assert proc.returncode in ok, f"{step} failed:\n{script}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr

    def instructor(self, block: str, step: str, assignment: str = "01_attention", may_fail: str = "") -> str:
        """Line by line, as typed. `make autograde` fails (make: 2) when a submission is NOT GRADED."""
        out = ""
        for line in block.replace("01_attention", assignment).splitlines():
            if line.strip() and not line.startswith("#"):
                command = line.split("#")[0].strip().replace(assignment, "<A>")
                out += self.run(line, self.course, self.env, f"{step}: {command}",
                                ok=(0, 2) if may_fail and may_fail in line else (0,))
        return out

    def student_env(self, student: str) -> dict:
        home = self.tmp / "home" / student
        env = {**self.env, "HOME": str(home), "PYTHONPATH": str(home / "site"), "USER": student}
        env.pop("NBGRADER_EXCHANGE")  # students know the exchange from their own nbgrader_config.py
        return env

    def student(self, student: str, block: str, step: str, assignment: str = "01_attention",
                work=None) -> str:
        env = self.student_env(student)
        home = Path(env["HOME"])
        home.mkdir(parents=True, exist_ok=True)
        script = block.replace("01_attention", assignment)
        if "pip install -r requirements.txt" in script:
            [wheel] = (home / "student-kit").glob("*.whl")
            script = re.sub(r".*pip install -r requirements.txt.*",
                            f"pip install --quiet --no-deps --no-index --target {home / 'site'} {wheel}", script)
        before, _, after = script.partition("jupyter lab")
        out = self.run(before, home, env, step)
        if _:
            work(home / assignment)
            out += self.run(after.split("\n", 1)[1], home, env, step)
        config = home / ".jupyter" / "nbgrader_config.py"
        if config.exists() and "student_id" not in config.read_text():
            config.write_text(config.read_text() + f'c.CourseDirectory.student_id = "{student}"  # the login, on a hub\n')
        return out


def _answers(course: Path, assignment: str, planted):
    path, source = read_source(course, assignment)
    release = nbformat.read(course / "release" / assignment / path.name, as_version=4)
    return path.name, as_submission(release, source, path, planted, only_bug_cells=False)


def _grade_report(course: Path, assignment: str, student: str, score: float) -> None:
    """What the formgrader saves when a grader scores the defect report."""
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "transformer-debug") as gb:
        sub = gb.find_submission(assignment, student)
        [grade] = [g for nb in sub.notebooks for g in nb.grades if g.name == "defect-report"]
        grade.manual_score, grade.needs_manual_grade = score, False
        gb.db.commit()


def _report_grade(course: Path, assignment: str, student: str):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "transformer-debug") as gb:
        sub = gb.find_submission(assignment, student)
        [grade] = [g for nb in sub.notebooks for g in nb.grades if g.name == "defect-report"]
        return grade.manual_score, grade.needs_manual_grade


def test_running_a_class_as_the_readme_says(tmp_path):
    once, roster, student_once, release, work, collect, finish, fetch_feedback = [b for _, b in readme_blocks()]
    walk = Walk(tmp_path)
    course = walk.course
    (course / "roster.csv").write_text(roster)
    walk.instructor(once, "setup")
    kit = course / "build" / "student-kit"
    students = ("ada", "ben", "cy")
    for s in students:
        shutil.copytree(kit, tmp_path / "home" / s / "student-kit")
        walk.student(s, student_once, "student setup")

    catalog = Catalog.load(course)
    one_bug_fixed = {b.id for b in catalog.bugs if b.notebook == "01_attention"} - {"attention-missing-scale"}
    plans = {("ada", "01_attention"): set(), ("ben", "01_attention"): one_bug_fixed, ("cy", "01_attention"): None,
             ("ada", "02_masking"): set(), ("ben", "02_masking"): "broken"}
    for assignment, due in zip(ASSIGNMENTS, ("2099-01-01 00:00:00 UTC", "2020-01-01 00:00:00 UTC")):
        walk.instructor(re.sub(r'--duedate="[^"]*"', f'--duedate="{due}"', release), "release", assignment)
        for s in students:
            plan = plans.get((s, assignment), "absent")
            if plan == "absent":
                continue

            def edit(folder: Path, plan=plan, assignment=assignment):
                [notebook] = folder.glob("*.ipynb")
                if plan == "broken":
                    notebook.write_text('{"cells": [ unfinished')
                elif plan is not None:
                    name, nb = _answers(course, assignment, plan)
                    nbformat.write(nb, folder / name)
            walk.student(s, work, "fetch and submit", assignment, work=edit)

    # 5. collect and autograde, both assignments
    for assignment in ASSIGNMENTS:
        out = walk.instructor(collect, "collect and autograde", assignment, may_fail="make autograde")
    assert "ben / 02_masking" in out and "NOT GRADED" in out
    # 6. the formgrader: every report of 01 graded; ada's report of 02 not yet
    for s, score in zip(students, (2, 1, 0)):
        _grade_report(course, "01_attention", s, score)
    again = walk.instructor("make autograde", "autograde again", may_fail="make autograde")
    assert "unchanged since their last autograde" in again
    assert _report_grade(course, "01_attention", "ada") == (2, False), "a second autograde reset a manual grade"
    # 7. feedback, release, export
    out = ""
    for assignment in ASSIGNMENTS:
        out += walk.instructor(finish, "feedback, release and export", assignment)
    assert "ada / 02_masking" in out  # her report awaits a grader: no feedback yet, and it says so
    for s in ("ada", "ben"):
        walk.student(s, fetch_feedback, "fetch feedback", "01_attention")
    walk.student("ben", fetch_feedback, "fetch feedback", "02_masking")

    home = tmp_path / "home"
    assert list((home / "ada" / "01_attention" / "feedback").rglob("*.html"))
    [note] = (home / "ben" / "02_masking" / "feedback").rglob("*.html")
    assert "could not be graded" in note.read_text() and "not a valid notebook" in note.read_text()
    assert "no submission from cy" in (course / "feedback" / "cy" / "02_masking" / "not-submitted.txt").read_text()
    assert not (course / "feedback" / "ada" / "02_masking").exists()

    with open(course / "grades.csv") as f:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    assert set(rows) == {(s, a) for s in students for a in ASSIGNMENTS}, "exports only released assignments"
    auto_max = float(rows["ada", "01_attention"]["autograded_max"])
    assert float(rows["ada", "01_attention"]["autograded_score"]) == auto_max > 0
    assert float(rows["ada", "01_attention"]["score"]) == auto_max + 2
    assert 0 < float(rows["ben", "01_attention"]["autograded_score"]) < auto_max
    assert rows["ben", "01_attention"]["manual_score"] == "1"
    assert float(rows["cy", "01_attention"]["autograded_score"]) == 0
    assert rows["ada", "01_attention"]["late"] == "no" and rows["ada", "02_masking"]["late"] == "yes"
    assert rows["ada", "02_masking"]["status"] == "awaiting grader"
    assert rows["ada", "02_masking"]["reports_awaiting_grader"] == "1"
    assert rows["ben", "02_masking"]["status"] == "NOT GRADED" and "not a valid notebook" in rows["ben", "02_masking"]["reason"]
    assert rows["cy", "02_masking"]["status"] == "missing" and rows["cy", "02_masking"]["score"] == "0"
    assert {rows[s, "01_attention"]["status"] for s in students} == {"graded"}

    timings = ROOT / "build" / "class-walk.json"
    timings.parent.mkdir(exist_ok=True)
    timings.write_text(json.dumps({"students": len(students), "seconds": walk.seconds}, indent=1))


def test_autograde_on_a_fresh_clone_names_the_cause_and_the_next_command(tmp_path):
    course = copy_course(ROOT, tmp_path / "course")
    (course / "submitted" / "ada" / "01_attention").mkdir(parents=True)
    shutil.copy(next((ROOT / "release" / "01_attention").glob("*.ipynb")), course / "submitted" / "ada" / "01_attention")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "transformer_debug.authoring.cli",
                           "--root", str(course), "autograde"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "01_attention not in the gradebook" in proc.stderr and "make assignments" in proc.stderr
