"""`make grade`: judge every submission sealed off, in parallel, then grade them in one writer.

1. Every folder in submitted/ is listed first; each one ends either graded or NOT GRADED with a
   reason (a broken notebook, a symbolic link, a process that died, ...).
2. Judging (the slow part) runs `workers` submissions at once, or on a Dask cluster: each job is
   a fresh grader process that runs the notebook in a bubblewrap sandbox and decides the tests
   outside it (judge.py). Results land in build/judged/, written only by this process.
3. nbgrader then autogrades each assignment once, in this process's child, taking the judged
   outputs (nbgrader_plugin.JudgedExecute): nbgrader alone writes the gradebook, then the
   feedback, then grades.csv (written to a temporary file and renamed, so it is never half
   written). Killed halfway, a second run reuses every judged result and finishes the job.
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

__all__ = ["problems_with", "grade_all", "judged_path", "read_judged", "write_judged", "sandbox_mode",
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


def grade_all(root: Path, workers: int = 1, scheduler: str | None = None, sealed: bool = True,
              local_cluster: int = 0) -> int:
    start = time.perf_counter()
    catalog = Catalog.load(root)
    if not (root / "submitted").is_dir():
        print("nothing to grade: no submitted/ folder (collect submissions with nbgrader first)")
        return 0
    if sealed:
        os.environ.pop(SANDBOX_ENV, None)
        sandbox_mode()  # raises, with the reason, when submissions cannot be sealed
    else:
        os.environ[SANDBOX_ENV] = "off"
        print("WARNING: grading WITHOUT the sandbox (--no-sandbox): each submission runs with your rights "
              "and can read, change or delete any file you can", file=sys.stderr)
    with _only_run(root):
        submissions = collect(root, catalog)
        not_graded: dict[tuple[str, str], str] = {}
        jobs, cached = [], 0
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
                where = judged_path(root, sub.assignment, sub.student, path.stem)
                if read_judged(where, key) is not None:
                    cached += 1
                    continue
                jobs.append({"root": str(root), "notebook": nb, "sealed": sealed, "key": key,
                             "where": str(where), "who": f"{sub.student} / {sub.assignment}"})
        how = f"Dask at {scheduler}" if scheduler else (f"a local Dask cluster of {local_cluster}" if local_cluster
                                                        else f"{workers} worker(s)")
        print(f"{len(submissions)} submission(s); judging {len(jobs)} notebook(s) on {how}"
              + (f", {cached} already judged" if cached else ""))
        judging = time.perf_counter()
        for job, result in _judge_all(jobs, workers, scheduler, local_cluster):
            write_judged(Path(job["where"]), job["key"], result)
            status = f"NOT GRADED: {result['problem']}" if result.get("problem") else f"{result.get('seconds', 0):.1f} s"
            print(f"judged {job['who']} ({status})")

        print(f"judging took {time.perf_counter() - judging:.0f} s (listing and sanitizing {judging - start:.0f} s)")
        writing = time.perf_counter()
        plan = {a: [s.student for s in submissions if s.assignment == a and (s.student, a) not in not_graded]
                for a in catalog.assignments}
        plan = {a: students for a, students in plan.items() if students}
        tmp = root / "build" / "grades.csv.tmp"
        written = _write_grades(root, plan, tmp) if plan else {}
        graded: dict[str, list[str]] = {}
        for assignment, students in plan.items():
            for student in students:
                outcome = written.get(f"{assignment}/{student}", {"success": False, "log": "the writer stopped"})
                if outcome["success"]:
                    graded.setdefault(assignment, []).append(student)
                    continue
                reasons = [r["problem"] for p in (root / "source" / assignment).glob("*.ipynb")
                           if (r := _stored(judged_path(root, assignment, student, p.stem))) and r.get("problem")]
                errors = [line for line in outcome["log"].splitlines() if "Error" in line or "ERROR" in line][-2:]
                not_graded[student, assignment] = "; ".join(reasons) or ("nbgrader could not autograde it: "
                                                                         + " | ".join(errors))
        print(f"nbgrader wrote grades and feedback in {time.perf_counter() - writing:.0f} s")
        if written.get("export"):
            os.replace(tmp, root / "grades.csv")
            print(f"feedback in feedback/, grades in {root / 'grades.csv'}")
        n_graded = sum(len(s) for s in graded.values())
        print(f"graded {n_graded}, NOT GRADED {len(not_graded)}, in {time.perf_counter() - start:.0f} s "
              f"({'sandboxed' if sealed else 'NOT sandboxed'})")
        for (student, assignment), reason in sorted(not_graded.items()):
            print(f"NOT GRADED {student} / {assignment}: {reason}")
        return 1 if not_graded else 0


def _write_grades(root: Path, plan: dict, export_to: Path) -> dict:
    """Run the single writer (writer.py) and return what it did per submission."""
    import subprocess
    library = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([library, os.environ.get("PYTHONPATH", "")]),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "transformer_debug.authoring.writer"], cwd=root, env=env,
                          input=json.dumps({"root": str(root), "students": plan, "export_to": str(export_to)}),
                          capture_output=True, text=True)
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
