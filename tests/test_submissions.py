"""`make grade`: a broken submission is reported by path and reason, and loses nobody's grade."""
import csv
import html
import os
import re

import nbformat
import pytest

from transformer_debug.authoring.builds import as_submission, nbgrader, read_source
from transformer_debug.authoring.submissions import grade_all

from transformer_debug.sandbox import bwrap_available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bwrap_available() is not None and not os.environ.get("COURSE_REQUIRE_SANDBOX"),
                                 reason=f"{bwrap_available()}")]


def test_grade_reports_broken_submissions_and_grades_the_rest(course, capsys):
    nbgrader(course, "generate_assignment", "01_attention", "--force")
    path, source = read_source(course, "01_attention")
    release = nbformat.read(course / "release" / "01_attention" / path.name, as_version=4)
    folders = {s: course / "submitted" / s / "01_attention" for s in ("alice", "bob", "carol", "dave")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    nbformat.write(as_submission(release, source, path, set(), only_bug_cells=False),
                   folders["alice"] / path.name)
    (folders["bob"] / path.name).write_text('{"cells": [ this is not json')
    nbformat.write(release, folders["carol"] / path.name)
    # dave keeps the bugs but guts a test cell and raises its points: nbgrader restores both.
    tampered = nbformat.read(course / "release" / "01_attention" / path.name, as_version=4)
    for cell in tampered.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "hidden-split-heads":
            cell.source, cell.metadata["nbgrader"]["points"] = "pass", 100
    nbformat.write(tampered, folders["dave"] / path.name)

    assert grade_all(course) == 1
    out = capsys.readouterr().out
    assert f"NOT GRADED bob / 01_attention: {folders['bob'] / path.name}: not a valid notebook" in out
    assert (folders["bob"] / path.name).read_text() == '{"cells": [ this is not json'

    with open(course / "grades.csv") as f:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert scores["carol"] == scores["dave"] == 0
    assert scores["alice"] == sum(
        c.metadata["nbgrader"]["points"] for c in source.cells
        if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")
    assert (course / "feedback" / "alice" / "01_attention" / "attention.html").exists()
    # Feedback keeps the verdict and the teaching message, not the hidden test code (nbgrader #917).
    page = (course / "feedback" / "carol" / "01_attention" / "attention.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "split_heads(x)[0, 0, 1] should be token 1" in text
    for hidden_line in ("ref.in_proj_weight.copy_(", "for b in range(B):", "BEGIN HIDDEN TESTS"):
        assert hidden_line not in text
