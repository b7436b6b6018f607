"""Grading a class: `make autograde`, `make feedback`, `make export` (and `make grade`, all three).

1. autograde: every folder in submitted/ is listed first; each one ends either graded or NOT
   GRADED with a reason (a broken notebook, a symbolic link, a process that died, ...), kept in
   build/not_graded.json for the later steps. Judging (the slow part) runs `workers`
   submissions at once, or on a Dask cluster: each job is a fresh grader process that runs the
   notebook in a bubblewrap sandbox and decides the tests outside it (judge.py). Results land
   in build/judged/, written only by this process. nbgrader then autogrades, in one child
   process (writer.py), taking the judged outputs (nbgrader_plugin.JudgedExecute): nbgrader
   alone writes the gradebook. A submission unchanged since its last autograde is skipped, so
   manual grades are never reset. Killed halfway, a second run reuses every judged result.
2. feedback (after manual grading): nbgrader's feedback for each fully graded submission, and
   a note for each missing or NOT GRADED one (classlist.write_notes).
3. export: grades.csv for the released assignments (classlist.write_csv), written to a
   temporary file and renamed, so it is never half written.
Submissions are never modified or deleted.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..sandbox import bwrap_available
from .catalog import Catalog
from .judge import judge_key, run_judge

__all__ = ["problems_with", "grade_all", "autograde", "feedback", "export", "judged_path", "read_judged", "write_judged", "sandbox_mode",
           "Submission", "collect"]

SANDBOX_ENV = "TRANSFORMER_DEBUG_SANDBOX"   # "off": the instructor's explicit --no-sandbox
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")


def sandbox_mode() -> bool:
    """True: seal every submission (the default). Refuses to go on, loudly, if it cannot."""
    if os.environ.get(SANDBOX_ENV) == "off":
        return False
    why = bwrap_available()
    if why:
        raise RuntimeError(f"cannot seal submissions: {why}. Install it, or grade without a sandbox with "
                           "`course grade --no-sandbox` (only for submissions you trust)")
    return True


def judged_path(root: Path, assignment: str, student: str, notebook: str) -> Path:
    return root / "build" / "judged" / assignment / student / f"{notebook}.json"


def read_judged(path: Path, key: str) -> dict | None:
    """The judged result for exactly this notebook, or None."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stored["result"] if isinstance(stored, dict) and stored.get("key") == key else None


def write_judged(path: Path, key: str, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "result": result}))
    os.replace(tmp, path)


def problems_with(path: Path, expected: set[str]) -> list[str]:
    """Why nbgrader cannot grade this submission folder (empty list: it can)."""
    if path.is_symlink() or path.parent.is_symlink():
        return [f"{path}: a symbolic link, not a submitted folder"]
    names = {p.name for p in path.glob("*.ipynb")}
    problems = [f"{path}: missing {name}" for name in sorted(expected - names)]
    for name in sorted(names & expected):
        if (path / name).is_symlink() or not (path / name).is_file():
            problems.append(f"{path / name}: a symbolic link or not a plain file")
            continue
        try:
            nb = nbformat.read(path / name, as_version=4)
            nbformat.validate(nb)
        except (ValueError, nbformat.ValidationError, KeyError, AttributeError, TypeError,
                UnicodeDecodeError, RecursionError) as err:  # NotJSONError is a ValueError
            problems.append(f"{path / name}: not a valid notebook ({type(err).__name__}: {str(err)[:200]})")
            continue
        ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells]
        if not any(ids):
            problems.append(f"{path / name}: no nbgrader cell metadata, so it is not the released notebook "
                            "(was it re-created, copied cell by cell or converted?)")
        elif len([i for i in ids if i]) != len({i for i in ids if i}):
            problems.append(f"{path / name}: duplicated graded cells (copied or pasted cells?)")
    return problems


@dataclass
class Submission:
    student: str
    assignment: str
    folder: Path
    problems: list[str]


def collect(root: Path, catalog: Catalog) -> list[Submission]:
    """Every folder under submitted/, each with what stops it from being graded."""
    found = []
    submitted = root / "submitted"
    for student_dir in sorted(submitted.iterdir()):
        if not student_dir.is_dir() and not student_dir.is_symlink():
            continue
        for folder in sorted(student_dir.iterdir()) if student_dir.is_dir() else []:
            problems = []
            student, assignment = student_dir.name, folder.name
            if not STUDENT_ID.match(student):
                problems.append(f"{folder}: {student!r} is not a usable student id")
            if assignment not in catalog.assignments:
                problems.append(f"{folder}: no assignment called {assignment!r}")
            else:
                expected = {p.name for p in (root / "source" / assignment).glob("*.ipynb")}
                problems += problems_with(folder, expected)
            found.append(Submission(student, assignment, folder, problems))
    return found


def _sanitized(root: Path, sub: Submission, path: Path):
    """The notebook nbgrader will execute: nbgrader's own sanitizing steps, read-only on the gradebook."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells,
                                        OverwriteKernelspec)
    nb = nbformat.read(path, as_version=4)
    resources = {"nbgrader": {"student": sub.student, "assignment": sub.assignment, "notebook": path.stem,
                              "db_url": f"sqlite:///{root / 'gradebook.db'}", "course_id": "transformer-debug"},
                 "metadata": {"path": str(path.parent)}}
    for step in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
        nb, resources = step().preprocess(nb, resources)
    return nb


@contextlib.contextmanager
def _only_run(root: Path):
    (root / "build").mkdir(exist_ok=True)
    with open(root / "build" / "grade.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError("another `make grade` is running on this course; wait for it") from None
        yield


def _judge_all(jobs: list[dict], workers: int, scheduler: str | None, local_cluster: int):
    """Yield (job, result) as they finish: a thread pool of grader processes, or Dask."""
    if scheduler or local_cluster:
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=local_cluster, threads_per_worker=1, processes=True,
                               dashboard_address=None) if local_cluster else None
        with Client(scheduler or cluster) as client:
            futures = {client.submit(run_judge, job, pure=False): job for job in jobs}
            from distributed import as_completed as dask_completed
            for future in dask_completed(futures):
                yield futures[future], future.result()
        if cluster is not None:
            cluster.close()
        return
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(run_judge, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _gradebook(root: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """What nbgrader knows: the assignments (generate_assignment adds them) and the
    (student, assignment) pairs it has autograded."""
    import sqlite3
    db = root / "gradebook.db"
    if not db.exists():
        return set(), set()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        try:
            assignments = {name for (name,) in con.execute("SELECT name FROM assignment")}
            graded = set(con.execute("SELECT s.student_id, a.name FROM submitted_assignment s "
                                     "JOIN assignment a ON a.id = s.assignment_id"))
        except sqlite3.DatabaseError:
            return set(), set()
    return assignments, graded


def _autograded_path(root: Path, assignment: str, student: str) -> Path:
    return root / "build" / "autograded" / assignment / f"{student}.json"


def _pick(found: list[Submission], assignments, students) -> list[Submission]:
    return [s for s in found if (not assignments or s.assignment in assignments)
            and (not students or s.student in students)]


def autograde(root: Path, assignments: list[str] | None = None, students: list[str] | None = None,
              workers: int = 1, scheduler: str | None = None, sealed: bool = True, local_cluster: int = 0,
              regrade: bool = False, table: bool = True) -> int:
    """Judge and autograde what was collected (new or changed submissions only, unless `regrade`).

    A submission autograded before and unchanged since is left alone, so the manual grades and
    "needs manual grade" flags of the reports already graded stay as they are. A changed
    (resubmitted) one is autograded again, and nbgrader asks for its reports to be reviewed.
    """
    from .classlist import print_table, record_not_graded, released_assignments, standings
    start = time.perf_counter()
    root = Path(root)
    catalog = Catalog.load(root)
    unknown = sorted(set(assignments or ()) - set(catalog.assignments))
    if unknown:
        raise RuntimeError(f"no assignment called {', '.join(unknown)}; the course has {', '.join(catalog.assignments)}")
    if not (root / "submitted").is_dir():
        raise RuntimeError("nothing to grade: no submitted/ folder. Collect the submissions first: "
                           "`nbgrader collect <assignment>` (README, Running a class)")
    if sealed:
        os.environ.pop(SANDBOX_ENV, None)
        sandbox_mode()  # raises, with the reason, when submissions cannot be sealed
    else:
        os.environ[SANDBOX_ENV] = "off"
        print("WARNING: grading WITHOUT the sandbox (--no-sandbox): each submission runs with your rights "
              "and can read, change or delete any file you can", file=sys.stderr)
    with _only_run(root):
        submissions = _pick(collect(root, catalog), assignments, students)
        known, in_gradebook = _gradebook(root)
        absent = sorted({s.assignment for s in submissions if s.assignment in catalog.assignments} - known)
        if absent:
            raise RuntimeError(f"{', '.join(absent)} not in the gradebook ({root / 'gradebook.db'}): nbgrader adds an "
                               "assignment when it generates it. Run `make assignments` (or `nbgrader generate_assignment "
                               f"{absent[0]}`), then this command again")
        not_graded: dict[tuple[str, str], str] = {}
        jobs, cached, unchanged = [], 0, []
        keys: dict[tuple[str, str], list[str]] = {}
        for sub in submissions:
            if sub.problems:
                not_graded[sub.student, sub.assignment] = "; ".join(sub.problems)
                continue
            for path in sorted((root / "source" / sub.assignment).glob("*.ipynb")):
                try:
                    nb = _sanitized(root, sub, sub.folder / path.name)
                except Exception as err:  # noqa: BLE001 (nbgrader's sanitizing refused it)
                    not_graded[sub.student, sub.assignment] = f"{sub.folder / path.name}: {type(err).__name__}: {err}"
                    continue
                key = judge_key(nb)
                keys.setdefault((sub.student, sub.assignment), []).append(key)
                where = judged_path(root, sub.assignment, sub.student, path.stem)
                if read_judged(where, key) is not None:
                    cached += 1
                    continue
                jobs.append({"root": str(root), "notebook": nb, "sealed": sealed, "key": key,
                             "where": str(where), "who": f"{sub.student} / {sub.assignment}"})
        plan: dict[str, list[str]] = {}
        for sub in submissions:
            if (sub.student, sub.assignment) in not_graded:
                continue
            marker = _autograded_path(root, sub.assignment, sub.student)
            if (not regrade and (sub.student, sub.assignment) in in_gradebook
                    and _stored_keys(marker) == keys.get((sub.student, sub.assignment))):
                unchanged.append(sub)
                continue
            plan.setdefault(sub.assignment, []).append(sub.student)
        how = f"Dask at {scheduler}" if scheduler else (f"a local Dask cluster of {local_cluster}" if local_cluster
                                                        else f"{workers} worker(s)")
        print(f"{len(submissions)} submission(s); judging {len(jobs)} notebook(s) on {how}"
              + (f", {cached} already judged" if cached else "")
              + (f"; {len(unchanged)} unchanged since their last autograde, left as they are "
                 "(`--regrade` to redo them)" if unchanged else ""))
        judging = time.perf_counter()
        for job, result in _judge_all(jobs, workers, scheduler, local_cluster):
            write_judged(Path(job["where"]), job["key"], result)
            status = f"NOT GRADED: {result['problem']}" if result.get("problem") else f"{result.get('seconds', 0):.1f} s"
            print(f"judged {job['who']} ({status})")
        print(f"judging took {time.perf_counter() - judging:.0f} s (listing and sanitizing {judging - start:.0f} s)")

        writing = time.perf_counter()
        written = _write_grades(root, {"autograde": plan}) if plan else {}
        done = 0
        for assignment, names in plan.items():
            for student in names:
                outcome = written.get(f"{assignment}/{student}", {"success": False, "log": "the writer stopped"})
                if outcome["success"]:
                    marker = _autograded_path(root, assignment, student)
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.write_text(json.dumps(keys[student, assignment]))
                    done += 1
                    continue
                reasons = [r["problem"] for p in (root / "source" / assignment).glob("*.ipynb")
                           if (r := _stored(judged_path(root, assignment, student, p.stem))) and r.get("problem")]
                not_graded[student, assignment] = "; ".join(reasons) or ("nbgrader could not autograde it: "
                                                                         + _nbgrader_errors(outcome["log"]))
        if plan:
            print(f"nbgrader autograded {sum(map(len, plan.values()))} submission(s) in "
                  f"{time.perf_counter() - writing:.0f} s")
        record_not_graded(root, {(s.student, s.assignment) for s in submissions}, not_graded)
        print(f"autograded {done}, unchanged {len(unchanged)}, NOT GRADED {len(not_graded)}, in "
              f"{time.perf_counter() - start:.0f} s ({'sandboxed' if sealed else 'NOT sandboxed'})")
        if table:
            rows = standings(root, assignments or released_assignments(root, catalog.assignments), students)
            print_table(rows, "\nThe class (`make export` writes it to grades.csv):")
            awaiting = sum(r.awaiting for r in rows)
            if awaiting:
                print(f"Next: grade the {awaiting} report(s) awaiting a grader in the formgrader (`make formgrader`), "
                      "then `make feedback` and `make export`.")
        for (student, assignment), reason in sorted(not_graded.items()):
            print(f"NOT GRADED {student} / {assignment}: {reason}")
        return 1 if not_graded else 0


def feedback(root: Path, assignments: list[str] | None = None, students: list[str] | None = None,
             partial: bool = False, table: bool = True) -> int:
    """nbgrader's feedback for every graded submission, plus notes for missing and NOT GRADED ones.

    A submission whose reports still await a grader gets no feedback unless `partial`: its
    report would show 0 points that nobody gave.
    """
    from .classlist import print_table, released_assignments, standings, write_notes
    root = Path(root)
    catalog = Catalog.load(root)
    with _only_run(root):
        rows = standings(root, assignments or released_assignments(root, catalog.assignments), students)
        ready = [r for r in rows if r.status == "graded" or (partial and r.status == "awaiting grader")]
        waiting = [r for r in rows if r.status == "awaiting grader" and not partial]
        plan: dict[str, list[str]] = {}
        for r in ready:
            plan.setdefault(r.assignment, []).append(r.student)
        start = time.perf_counter()
        written = _write_grades(root, {"feedback": plan}) if plan else {}
        failed = [f"{a}/{s}: " + _nbgrader_errors(v.get("log", "")) for a, names in plan.items() for s in names
                  if not (v := written.get(f"feedback {a}/{s}", {})).get("success")]
        notes = write_notes(root, rows)
        print(f"feedback written for {len(ready) - len(failed)} submission(s) in {time.perf_counter() - start:.0f} s, "
              f"notes for {len(notes)} missing or NOT GRADED notebook(s), in feedback/")
        for line in failed:
            print(f"feedback FAILED for {line}")
        if table:
            print_table(rows, "\nThe class:")
        if waiting:
            print(f"no feedback yet for {len(waiting)} submission(s) whose reports await a grader: "
                  + ", ".join(f"{r.student} / {r.assignment}" for r in waiting)
                  + ". Grade them in the formgrader (`make formgrader`) and run `make feedback` again "
                    "(or `make feedback PARTIAL=1` to send the autograded part now).")
        print("Next: `nbgrader release_feedback <assignment>` sends it to the students' exchange.")
        return 1 if failed else 0


def export(root: Path, to: Path | None = None, table: bool = True) -> int:
    """grades.csv for the released assignments: every student of the roster and every submitter."""
    from .classlist import print_table, released_assignments, standings, write_csv
    root = Path(root)
    catalog = Catalog.load(root)
    to = Path(to) if to else root / "grades.csv"
    rows = standings(root, released_assignments(root, catalog.assignments))
    write_csv(rows, to)
    if table:
        print_table(rows)
    print(f"grades of {len({r.assignment for r in rows})} released assignment(s) in {to}")
    return 0


def grade_all(root: Path, workers: int = 1, scheduler: str | None = None, sealed: bool = True,
              local_cluster: int = 0) -> int:
    """Everything at once (`make grade`): autograde, feedback (reports ungraded or not), export.
    For a quick look, or a course graded by tests alone; a class with reports to grade by hand
    runs the three steps at their own times (README, Running a class)."""
    root = Path(root)
    if not (root / "submitted").is_dir():
        print("nothing to grade: no submitted/ folder (collect submissions with `nbgrader collect` first)")
        return 0
    code = autograde(root, workers=workers, scheduler=scheduler, sealed=sealed, local_cluster=local_cluster,
                     table=False)
    feedback(root, partial=True, table=False)
    export(root)
    return code


def _nbgrader_errors(log: str) -> str:
    """The lines of nbgrader's log that name the cause (not its 'see the above traceback')."""
    lines = [l.strip() for l in log.splitlines() if ("Error" in l or "ERROR" in l or "No assignment" in l)
             and "see the above traceback" not in l and not l.strip().startswith("Traceback")]
    return " | ".join(lines[-3:]) or "(nbgrader gave no reason; run `nbgrader autograde` by hand to see its log)"


def _stored_keys(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_grades(root: Path, plan: dict) -> dict:
    """Run the single writer (writer.py) and return what it did per submission."""
    import subprocess
    library = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([library, os.environ.get("PYTHONPATH", "")]),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "transformer_debug.authoring.writer"], cwd=root, env=env,
                          input=json.dumps({"root": str(root), **plan}), capture_output=True, text=True)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError(f"the grade writer failed (exit {proc.returncode}): "
                           + " | ".join(proc.stderr.strip().splitlines()[-5:])) from None


def _stored(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
