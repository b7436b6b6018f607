"""`course`: the course author's commands (the Makefile calls these).

  course check                    markers and bugs.toml agree
  course release [A ...]          release/ with nbgrader, checked for leaks; notebooks/ executed;
                                  a file is rewritten only for a change nbval or an author sees
  course build A [--bug ID] -o F  the solution, or a single-bug mutant, as a notebook
  course sync                     fail if release/ or notebooks/ are stale against source/
  course bugs [A ...]             the bug coverage matrix (real nbgrader autograding)
  course grade [--workers K]      judge submitted/ sealed off, autograde, feedback, grades.csv
  course bench [A ...]            timings: nbval, autograde per student, throughput (build/bench.json)
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
from .submissions import grade_all
from .stable import stabilize


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


def cmd_bench(root: Path, args) -> int:
    from .bench import bench
    catalog = Catalog.load(root)
    bench(root, _assignments(catalog, args.assignments), students=args.students,
          workers=tuple(args.workers), repeat=args.repeat, out=Path(args.json))
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
    p = sub.add_parser("grade")
    p.add_argument("--workers", type=int, default=1, help="submissions judged at once on this machine")
    p.add_argument("--scheduler", default=None, help="a Dask scheduler's address (tcp://host:8786)")
    p.add_argument("--local-cluster", type=int, default=0, metavar="N",
                   help="start a local Dask cluster of N workers (what --scheduler does across machines)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run submissions WITHOUT bubblewrap (only for trusted notebooks; printed as a warning)")
    p.set_defaults(run=cmd_grade)
    p = sub.add_parser("bench")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--students", type=int, default=20, help="students for the throughput run (0: skip it)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default="build/bench.json")
    p.set_defaults(run=cmd_bench)
    args = parser.parse_args(argv)
    try:
        root = args.root or find_course_root(Path.cwd())
        return args.run(root.resolve(), args)
    except (CatalogError, MarkerError, RuntimeError) as err:
        print(f"course {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
