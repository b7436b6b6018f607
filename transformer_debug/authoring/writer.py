"""The single writer of grades: nbgrader's autograde and feedback, in one process.

`make autograde` starts it once, after every submission has been judged, and `make feedback`
once: it is the only process that writes gradebook.db, autograded/ and feedback/ (the notes and
grades.csv are written by the command itself, which runs no student code either), and no student code
runs in it (JudgedExecute takes the judged outputs). One process, because importing nbgrader
costs seconds and each command-line call would pay it again.

Input (stdin, JSON): {"root", "autograde": {assignment: [student, ...]}, "feedback": {...}}.
Output (stdout, JSON): {"assignment/student": {"success", "log"}, "feedback assignment/student": {...}}.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["main"]


def main() -> int:
    plan = json.loads(sys.stdin.read())
    root = Path(plan["root"])
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    os.chdir(root)
    sys.path.insert(0, str(root))
    from traitlets.config.loader import PyFileConfigLoader
    from nbgrader.apps import NbGraderAPI
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir, Authenticator(config=config), config=config)
    results = {}
    for assignment, students in plan.get("autograde", {}).items():
        for student in students:
            outcome = api.autograde(assignment, student, force=True, create=True)
            results[f"{assignment}/{student}"] = {"success": bool(outcome.get("success")),
                                                  "log": (outcome.get("error") or outcome.get("log") or "")[-2000:]}
    for assignment, students in plan.get("feedback", {}).items():
        for student in students:
            feedback = api.generate_feedback(assignment, student, force=True)
            results.setdefault(f"feedback {assignment}/{student}", {})["success"] = bool(feedback.get("success"))
            if not feedback.get("success"):
                results[f"feedback {assignment}/{student}"]["log"] = (feedback.get("error") or "")[-1000:]
    real_stdout.write(json.dumps(results))
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
