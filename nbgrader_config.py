"""nbgrader configuration for the Transformer Debug course (this folder is the course root).

nbgrader catches any exception raised here, logs it and carries on with its defaults: the
release would then ship `raise NotImplementedError()` stubs instead of the planted bugs.
So every failure below is turned into SystemExit, which nbgrader does not catch.
"""
import os
import sys

c = get_config()  # noqa: F821 (nbgrader provides get_config)

try:
    COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))
    # The library is installed with `pip install -e .`; this line also finds it when
    # nbgrader is started from another folder or from a copy of the course.
    sys.path.insert(0, COURSE_ROOT)

    from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
    from nbgrader.preprocessors import ClearSolutions, Execute
    from transformer_debug.authoring.nbgrader_plugin import (AddRubric, DropGraderNotes, HideHiddenTests,
                                                             JudgedExecute, ReleaseBugs)

    c.CourseDirectory.root = COURSE_ROOT
    c.CourseDirectory.course_id = "transformer-debug"
    c.CourseDirectory.db_url = "sqlite:///" + os.path.join(COURSE_ROOT, "gradebook.db")

    # Release the buggy code, not stubs: ReleaseBugs takes ClearSolutions' place.
    # class_traits()[...].default() gives the real list (.default_value is a sentinel).
    defaults = GenerateAssignment.class_traits()["preprocessors"].default()
    if defaults.count(ClearSolutions) != 1:
        raise RuntimeError(f"expected ClearSolutions once in nbgrader's preprocessors, got {defaults}")
    c.GenerateAssignment.preprocessors = [ReleaseBugs if p is ClearSolutions else p for p in defaults]

    # Feedback keeps each test's verdict and message but not the hidden test code, nor the
    # grader's rubric and model answer (AddRubric below).
    feedback = GenerateFeedback.class_traits()["preprocessors"].default()
    c.GenerateFeedback.preprocessors = [DropGraderNotes, HideHiddenTests, *feedback]

    # Never run a submission in nbgrader's own kernel: JudgedExecute runs it sealed off (bubblewrap)
    # and decides every test in a process the student's code never ran in (README, instructors).
    autograde = Autograde.class_traits()["autograde_preprocessors"].default()
    if autograde.count(Execute) != 1:
        raise RuntimeError(f"expected Execute once in nbgrader's autograde preprocessors, got {autograde}")
    # Right after it, the defect report's rubric and model answer go under the report cell, for the
    # grader in the formgrader.
    c.Autograde.autograde_preprocessors = [q for p in autograde
                                           for q in ((JudgedExecute, AddRubric) if p is Execute else (p,))]

    # Bound every cell, so a student's infinite loop cannot hang the autograder.
    c.Execute.timeout = 60  # seconds per cell; every cell of the course needs under 5
    c.Execute.interrupt_on_timeout = True
    c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", os.path.join(COURSE_ROOT, "exchange"))
except Exception as err:  # noqa: BLE001 (re-raised as SystemExit on purpose)
    raise SystemExit(f"nbgrader_config.py failed, refusing to run with nbgrader's defaults: {err!r}")
