"""The single writer of grades: nbgrader's autograde, feedback and export, in one process.

`make grade` starts this once, after every submission has been judged: it is the only process
that writes gradebook.db, autograded/, feedback/ and the exported CSV, and no student code
runs in it (JudgedExecute takes the judged outputs). One process, because importing nbgrader
costs seconds and each command-line call would pay it again.

Input (stdin, JSON): {"root", "students": {assignment: [student, ...]}, "export_to"}.
Output (stdout, JSON): {"assignment/student": {"success": bool, "log": str}} and "export".
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
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader
    from nbgrader.apps import NbGraderAPI
    from nbgrader.api import Gradebook
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.plugins.export import CsvExportPlugin

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir, Authenticator(config=config), config=config)
    results = {}
    for assignment, students in plan["students"].items():
        for student in students:
            outcome = api.autograde(assignment, student, force=True, create=True)
            results[f"{assignment}/{student}"] = {"success": bool(outcome.get("success")),
                                                  "log": (outcome.get("error") or outcome.get("log") or "")[-2000:]}
        for student in students:
            if results[f"{assignment}/{student}"]["success"]:
                feedback = api.generate_feedback(assignment, student, force=True)
                if not feedback.get("success"):
                    results[f"{assignment}/{student}"]["feedback"] = (feedback.get("error") or "")[-1000:]
    if plan.get("export_to"):
        export_config = Config(config)
        export_config.CsvExportPlugin.to = plan["export_to"]
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            CsvExportPlugin(config=export_config).export(gb)
        results["export"] = plan["export_to"]
    real_stdout.write(json.dumps(results))
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
