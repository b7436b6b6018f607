"""`make bench`: how long the course takes, written to build/bench.json and printed as a table.

  - per notebook: nbval time of the executed solution, and the time to judge one student's
    submission (the solution) in the sandbox, median of `repeat`, with the sandbox's peak memory;
  - autograde throughput: `students` students x the assignments, all graded by `make grade`'s
    code with each WORKERS value, and the speed-up;
  - lines the notebooks themselves print for the bench (`bench: <name> = <value>`, in cells
    nbval ignores), such as the capstone's time to each target;
  - the last full `make test` (tests/conftest.py records its duration in build/test-session.json).
Not part of `make test`: it takes minutes to hours, by design.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from .builds import as_submission, copy_course, execute, nbgrader, read_source, solution_notebook
from .catalog import Catalog, grade_id, is_test_cell
from .judge import run_judge

__all__ = ["bench", "BENCH_LINE"]

BENCH_LINE = re.compile(r"^bench: (?P<name>.+?) = (?P<value>\S+)[ \t]*$", re.M)  # names may hold "T=256"


def _nbval_seconds(root: Path, assignment: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                    "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", f"notebooks/{assignment}"],
                   cwd=root, capture_output=True, text=True)
    return time.perf_counter() - start


def _solution_as_graded(root: Path, assignment: str):
    """The solution as a submission, with the test cells nbgrader would restore."""
    path, source = read_source(root, assignment)
    release = nbformat.read(root / "release" / assignment / path.name, as_version=4)
    nb = as_submission(release, source, path, set(), only_bug_cells=False)
    tests = {grade_id(c): c.source for c in source.cells if is_test_cell(c)}
    for cell in nb.cells:
        if is_test_cell(cell):
            cell.source = tests[grade_id(cell)]
    return path, nb


def _notebook_lines(root: Path, assignment: str) -> dict[str, str]:
    """The notebook's `bench:` lines, from a fresh run of the solution (only for notebooks whose
    stored outputs print some: a stored time says how busy the author's machine was, not this one)."""
    path, _ = read_source(root, assignment)
    stored = nbformat.read(root / "notebooks" / assignment / path.name, as_version=4)
    if not BENCH_LINE.search(_stream_text(stored)):
        return {}
    fresh = execute(solution_notebook(root, assignment), cwd=root / "notebooks" / assignment)
    return {m["name"].strip(): m["value"] for m in BENCH_LINE.finditer(_stream_text(fresh))}


def _stream_text(nb) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def _throughput(root: Path, assignments: list[str], students: int, workers: list[int]) -> dict:
    from .submissions import grade_all
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        course = copy_course(root, work / "course")
        for assignment in assignments:
            nbgrader(course, "generate_assignment", assignment, "--force")
            path, nb = _solution_as_graded(course, assignment)
            for n in range(students):
                folder = course / "submitted" / f"student{n:02d}" / assignment
                folder.mkdir(parents=True)
                nbformat.write(nb, folder / path.name)
        seconds, load = {}, {}
        for k in workers:
            shutil.rmtree(course / "build" / "judged", ignore_errors=True)
            shutil.rmtree(course / "build" / "autograded", ignore_errors=True)  # autograde all of them again
            start = time.perf_counter()
            grade_all(course, workers=k)
            seconds[k] = round(time.perf_counter() - start, 1)
            load[k] = round(os.getloadavg()[1], 2)  # 5-minute load at the end: was the machine busy?
        return seconds, load
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(root: Path, assignments: list[str], students: int = 20, workers: tuple[int, ...] = (1, 2),
          repeat: int = 3, out: Path | None = None) -> dict:
    result: dict = {"machine": _machine(), "notebooks": {}, "notebook_lines": {}}
    for assignment in assignments:
        nbval = _nbval_seconds(root, assignment)
        _, nb = _solution_as_graded(root, assignment)
        runs = [run_judge({"root": str(root), "notebook": nb, "sealed": True}) for _ in range(repeat)]
        wall = []
        for r in runs:
            wall.append(r.get("seconds", float("nan")))
        result["notebooks"][assignment] = {
            "nbval_s": round(nbval, 1), "judge_s_median": round(statistics.median(wall), 1),
            "sandbox_peak_mb": max((r.get("sandbox_peak_mb") or 0) for r in runs) or None,
            "problems": [r["problem"] for r in runs if r.get("problem")]}
        lines = _notebook_lines(root, assignment)
        if lines:
            result["notebook_lines"][assignment] = lines
        print(f"{assignment}: nbval {nbval:.1f} s, judged in {statistics.median(wall):.1f} s", flush=True)
    if students:
        seconds, load = _throughput(root, assignments, students, list(workers))
        result["throughput"] = {"students": students, "assignments": len(assignments),
                                "seconds_by_workers": seconds, "load_average_5min_by_workers": load,
                                "speedup": round(seconds[workers[0]] / seconds[workers[-1]], 2)}
    session = root / "build" / "test-session.json"
    if session.exists():
        result["make_test"] = json.loads(session.read_text())
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return result


def _machine() -> dict:
    import os
    import platform

    import torch
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "torch": torch.__version__}


def table(result: dict) -> str:
    m = result["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}", "",
             "| notebook | nbval (s) | autograde one student (s, median) | sandbox peak (MiB) |",
             "|---|---|---|---|"]
    for name, r in result["notebooks"].items():
        lines.append(f"| {name} | {r['nbval_s']} | {r['judge_s_median']} | {r['sandbox_peak_mb'] or '-'} |")
    t = result.get("throughput")
    if t:
        by = ", ".join(f"WORKERS={k}: {v} s" + (f" (load {t['load_average_5min_by_workers'][k]})"
                                                if "load_average_5min_by_workers" in t else "")
                       for k, v in t["seconds_by_workers"].items())
        lines += ["", f"make grade, {t['students']} students x {t['assignments']} notebooks: {by}; "
                      f"speed-up {t['speedup']}x"]
    for name, values in result.get("notebook_lines", {}).items():
        lines.append(f"{name}: " + ", ".join(f"{k} = {v}" for k, v in values.items()))
    if "make_test" in result:
        lines.append(f"last make test: {result['make_test'].get('seconds')} s "
                     f"({result['make_test'].get('passed')} passed)")
    return "\n".join(lines)
