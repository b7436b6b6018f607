"""`course`: the course author's commands (the Makefile calls these).

  course check                    markers and bugs.toml agree
  course release [A ...]          release/ with nbgrader, checked for leaks; notebooks/ executed;
                                  a file is rewritten only for a change nbval or an author sees
  course assignments [A ...]      nbgrader generate_assignment for each: the gradebook knows them
  course build A [--bug ID] -o F  the solution, or a single-bug mutant, as a notebook
  course sync                     fail if release/ or notebooks/ are stale against source/
  course bugs [A ...]             the bug coverage matrix (real nbgrader autograding)
  course autograde [--assignment A] [--student S] [--workers K]
                                  judge submitted/ sealed off and autograde (new or changed only)
  course feedback [--partial]     feedback for graded submissions, notes for missing/NOT GRADED
  course export [--to F]          grades.csv: released assignments, auto and manual apart, late
  course grade [--workers K]      all three at once (a quick look, or a course without reports)
  course student-kit [--out D]    the library's wheel and requirements for students (no solutions)
  course bench [A ...]            timings: nbval, autograde per student, throughput (build/bench.json)
  course answer-key [A ...]       one HTML page per assignment from bugs.toml (build/answer-key/)
  course class-report [A ...]     per bug, how many graded students fixed it (build/class-report.*)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

from .bugmatrix import bug_matrix, summary, write_json
from .builds import execute, nbgrader, read_source, solution_notebook
from .changes import keep_if_unchanged, sanitize_patterns, write_if_changed
from .catalog import Catalog, CatalogError, find_course_root
from .checks import leaks, out_of_sync
from .markers import MarkerError
from .stable import stabilize
from .submissions import autograde, export, feedback, grade_all


def _assignments(catalog: Catalog, names: list[str]) -> list[str]:
    unknown = set(names) - set(catalog.assignments)
    if unknown:
        raise CatalogError(f"unknown assignment(s) {sorted(unknown)}; known: {catalog.assignments}")
    return names or catalog.assignments


def cmd_check(root: Path, args) -> int:
    catalog = Catalog.load(root)
    catalog.check()
    print(f"catalog ok: {len(catalog.bugs)} bugs in {len(catalog.assignments)} notebooks")
    return 0


def _report(root: Path, path: Path, reasons: list[str]) -> None:
    """One line per generated file: rewritten and why, or kept as it was."""
    rel = path.relative_to(root).as_posix()
    if reasons:
        print(f"  rewritten {rel}: {'; '.join(reasons)}")
    else:
        print(f"  kept      {rel}: nothing an author wrote or nbval compares has changed")


def cmd_release(root: Path, args) -> int:
    catalog = Catalog.load(root)
    catalog.check()
    patterns = sanitize_patterns(root)
    failed = 0
    for assignment in _assignments(catalog, args.assignments):
        start = time.perf_counter()
        path, _ = read_source(root, assignment)
        released = root / "release" / assignment / path.name
        before = released.read_bytes() if released.exists() else None
        nbgrader(root, "generate_assignment", assignment, "--force")
        _report(root, released, keep_if_unchanged(released, before, patterns))
        release = nbformat.read(released, as_version=4)
        problems = leaks(root, assignment, release)
        for problem in problems:
            print(f"LEAK {problem}", file=sys.stderr)
        failed += bool(problems)
        out = root / "notebooks" / assignment / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        fresh = execute(solution_notebook(root, assignment), cwd=out.parent)
        stabilize(fresh, out.relative_to(root).as_posix())
        _report(root, out, write_if_changed(out, fresh, patterns))
        print(f"{assignment}: release/ and notebooks/ done ({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0


def cmd_assignments(root: Path, args) -> int:
    """The instructor's first step: every assignment into the gradebook, nothing executed."""
    import contextlib
    import os
    catalog = Catalog.load(root)
    catalog.check()
    names = _assignments(catalog, args.assignments)
    # One nbgrader for all of them: starting it costs seconds, each time.
    sys.path.insert(0, str(root))
    from nbgrader.apps import NbGraderAPI
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader
    with contextlib.chdir(root):
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        api = NbGraderAPI(CourseDirectory(config=config), Authenticator(config=config), config=config)
        failed = 0
        for assignment in names:
            path, _ = read_source(root, assignment)
            released = root / "release" / assignment / path.name
            before = released.read_bytes() if released.exists() else None
            outcome = api.generate_assignment(assignment, force=True, create=True)
            if not outcome.get("success"):
                raise RuntimeError(f"nbgrader could not generate {assignment}: "
                                   + (outcome.get("error") or outcome.get("log") or "")[-2000:])
            keep_if_unchanged(released, before, [])  # git status stays clean (no outputs to compare)
            problems = leaks(root, assignment, nbformat.read(released, as_version=4))
            for problem in problems:
                print(f"LEAK {problem}", file=sys.stderr)
            failed += bool(problems)
            print(f"{assignment}: in the gradebook, release/{assignment} generated")
    print("next: `nbgrader release_assignment <assignment>` when students may fetch it")
    return 1 if failed else 0


def cmd_build(root: Path, args) -> int:
    catalog = Catalog.load(root)
    [assignment] = _assignments(catalog, [args.assignment])
    for bug in args.bug:
        if catalog.get(bug).notebook != assignment:
            raise CatalogError(f"bug {bug!r} belongs to {catalog.get(bug).notebook}, not {assignment}")
    nb = solution_notebook(root, assignment, frozenset(args.bug))
    nbformat.write(nb, args.output)
    print(f"wrote {args.output} ({'bugs: ' + ', '.join(args.bug) if args.bug else 'solution'})")
    return 0


def cmd_sync(root: Path, args) -> int:
    catalog = Catalog.load(root)
    problems = out_of_sync(root, _assignments(catalog, args.assignments))
    for problem in problems:
        print(problem, file=sys.stderr)
    print("release/ and notebooks/ match source/" if not problems else f"{len(problems)} stale file(s)")
    return 1 if problems else 0


def cmd_bugs(root: Path, args) -> int:
    catalog = Catalog.load(root)
    reports = bug_matrix(root, _assignments(catalog, args.assignments))
    write_json(reports, Path(args.json))
    table, ok = summary(reports)
    print(f"(matrix written to {args.json})")
    print(table)
    return 0 if ok else 1


def cmd_grade(root: Path, args) -> int:
    return grade_all(root, workers=args.workers, scheduler=args.scheduler, sealed=not args.no_sandbox,
                      local_cluster=args.local_cluster)


def cmd_autograde(root: Path, args) -> int:
    return autograde(root, assignments=args.assignment, students=args.student, workers=args.workers,
                     scheduler=args.scheduler, sealed=not args.no_sandbox, local_cluster=args.local_cluster,
                     regrade=args.regrade)


def cmd_feedback(root: Path, args) -> int:
    return feedback(root, assignments=args.assignment, students=args.student, partial=args.partial)


def cmd_export(root: Path, args) -> int:
    return export(root, to=args.to)


def cmd_student_kit(root: Path, args) -> int:
    from .studentkit import build_kit
    out = build_kit(root, Path(args.out))  # relative: to the course root
    print(f"student kit in {out}: give students this folder; they run `pip install -r requirements.txt` in it")
    return 0


def cmd_bench(root: Path, args) -> int:
    from .bench import bench
    catalog = Catalog.load(root)
    bench(root, _assignments(catalog, args.assignments), students=args.students,
          workers=tuple(args.workers), repeat=args.repeat, out=Path(args.json))
    return 0


def cmd_answer_key(root: Path, args) -> int:
    from .answerkey import write_answer_keys
    catalog = Catalog.load(root)
    catalog.check()
    out = Path(args.out) if Path(args.out).is_absolute() else root / args.out
    written = write_answer_keys(catalog, _assignments(catalog, args.assignments), out)
    print(f"answer key: {len(written) - 1} page(s) and {out / 'index.html'}")
    return 0


def cmd_class_report(root: Path, args) -> int:
    from .classreport import class_report, table, write_report
    catalog = Catalog.load(root)
    names = _assignments(catalog, args.assignments) if args.assignments else None
    bug_rows, report_rows = class_report(root, catalog, names)
    print(table(bug_rows, report_rows))
    out = Path(args.out) if Path(args.out).is_absolute() else root / args.out
    print("written: " + ", ".join(str(p) for p in write_report(bug_rows, report_rows, out)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="course root (default: found from cwd)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check").set_defaults(run=cmd_check)
    p = sub.add_parser("release")
    p.add_argument("assignments", nargs="*")
    p.set_defaults(run=cmd_release)
    p = sub.add_parser("assignments")
    p.add_argument("assignments", nargs="*")
    p.set_defaults(run=cmd_assignments)
    p = sub.add_parser("build")
    p.add_argument("assignment")
    p.add_argument("--bug", action="append", default=[], help="plant this bug (repeatable)")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(run=cmd_build)
    p = sub.add_parser("sync")
    p.add_argument("assignments", nargs="*")
    p.set_defaults(run=cmd_sync)
    p = sub.add_parser("bugs")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--json", default="build/bugs.json")
    p.set_defaults(run=cmd_bugs)
    for name, run in (("grade", cmd_grade), ("autograde", cmd_autograde)):
        p = sub.add_parser(name)
        p.add_argument("--workers", type=int, default=1, help="submissions judged at once on this machine")
        p.add_argument("--scheduler", default=None, help="a Dask scheduler's address (tcp://host:8786)")
        p.add_argument("--local-cluster", type=int, default=0, metavar="N",
                       help="start a local Dask cluster of N workers (what --scheduler does across machines)")
        p.add_argument("--no-sandbox", action="store_true",
                       help="run submissions WITHOUT bubblewrap (only for trusted notebooks; printed as a warning)")
        p.set_defaults(run=run)
    p.add_argument("--regrade", action="store_true",
                   help="autograde unchanged submissions again (nbgrader then flags their graded reports for review)")
    for p in (sub.choices["autograde"], sub.add_parser("feedback")):
        p.add_argument("--assignment", action="append", default=None, help="only this assignment (repeatable)")
        p.add_argument("--student", action="append", default=None, help="only this student (repeatable)")
    p.add_argument("--partial", action="store_true",
                   help="also for submissions whose reports await a grader (they show 0 for the report)")
    p.set_defaults(run=cmd_feedback)
    p = sub.add_parser("export")
    p.add_argument("--to", default=None, help="the CSV to write (default: grades.csv in the course root)")
    p.set_defaults(run=cmd_export)
    p = sub.add_parser("student-kit")
    p.add_argument("--out", default="build/student-kit")
    p.set_defaults(run=cmd_student_kit)
    p = sub.add_parser("bench")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--students", type=int, default=20, help="students for the throughput run (0: skip it)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default="build/bench.json")
    p.set_defaults(run=cmd_bench)
    p = sub.add_parser("answer-key", help="HTML answer key per assignment (bugs, fixes, tests, model report)")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--out", default="build/answer-key", help="folder for the pages (default: build/answer-key)")
    p.set_defaults(run=cmd_answer_key)
    p = sub.add_parser("class-report", help="per bug, how many graded students fixed it (reads gradebook.db)")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--out", default="build/class-report", help="path without suffix for .csv and .html")
    p.set_defaults(run=cmd_class_report)
    args = parser.parse_args(argv)
    try:
        root = args.root or find_course_root(Path.cwd())
        return args.run(root.resolve(), args)
    except (CatalogError, MarkerError, RuntimeError) as err:
        print(f"course {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
