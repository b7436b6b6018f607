"""The nbgrader side: the config really loads our preprocessor, releases are clean and current."""
import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from conftest import ROOT, edit_cell
from transformer_debug.authoring.builds import nbgrader
from transformer_debug.authoring.catalog import Catalog
from transformer_debug.authoring.checks import leaks, out_of_sync
from transformer_debug.authoring.nbgrader_plugin import AddRubric, DropGraderNotes, HideHiddenTests, ReleaseBugs

NB01 = "source/01_attention/attention.ipynb"
ASSIGNMENTS = Catalog.load(ROOT).assignments


def test_config_puts_release_bugs_in_place_of_clear_solutions():
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import ClearSolutions

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    used = GenerateAssignment(config=config).preprocessors
    defaults = GenerateAssignment.class_traits()["preprocessors"].default()
    assert ReleaseBugs in used and ClearSolutions not in used
    assert [ClearSolutions if p is ReleaseBugs else p for p in used] == defaults
    assert config.Execute.timeout and config.Execute.interrupt_on_timeout
    from nbgrader.converters import Autograde, GenerateFeedback
    assert GenerateFeedback(config=config).preprocessors[:2] == [DropGraderNotes, HideHiddenTests]
    # A submission never runs in nbgrader's own kernel: the sealed judge replaces Execute.
    from nbgrader.preprocessors import Execute
    from transformer_debug.authoring.nbgrader_plugin import JudgedExecute
    autograde = Autograde(config=config).autograde_preprocessors
    assert JudgedExecute in autograde and Execute not in autograde
    # The grader's rubric goes in once the outputs are in, before nbgrader scores them.
    assert autograde[autograde.index(JudgedExecute) + 1] is AddRubric


@pytest.mark.slow
def test_a_broken_config_stops_nbgrader_instead_of_using_defaults(course):
    config = course / "nbgrader_config.py"
    text = config.read_text()
    assert text.count("JudgedExecute, ReleaseBugs)") == 1
    config.write_text(text.replace("JudgedExecute, ReleaseBugs)", "JudgedExecute, ReleaseBugz)"))
    proc = nbgrader(course, "generate_assignment", "01_attention", "--force", check=False)
    assert proc.returncode != 0
    assert "refusing to run with nbgrader's defaults" in proc.stdout + proc.stderr
    assert not (course / "release" / "01_attention").exists()


@pytest.mark.slow
@pytest.mark.parametrize("old, new, message", [
    ("### END BUG", "### END BUGS", "malformed marker"),
    ("BEGIN BUG attention-missing-scale", "BEGIN BUG attention-missing-scael", "not in the catalog"),
])
def test_a_malformed_marker_fails_the_release_with_its_place(course, old, new, message):
    edit_cell(course / NB01, "attention-code", lambda s: s.replace(old, new, 1))
    proc = nbgrader(course, "generate_assignment", "01_attention", "--force", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert message in output and "attention.ipynb, cell" in output


@pytest.mark.slow
def test_release_and_solutions_are_in_sync_with_source():
    assert out_of_sync(ROOT, ASSIGNMENTS) == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_release_leaks_nothing(assignment):
    [path] = (ROOT / "release" / assignment).glob("*.ipynb")
    assert leaks(ROOT, assignment, nbformat.read(path, as_version=4)) == []


def test_the_leak_check_can_fail():
    [path] = (ROOT / "release" / "01_attention").glob("*.ipynb")
    release = nbformat.read(path, as_version=4)
    code = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "attention-code")
    code.source = code.source.replace("return q @ k.transpose(-2, -1)\n",
                                      "return q @ k.transpose(-2, -1) / math.sqrt(self.d_head)\n")
    hidden = next(c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "hidden-scores")
    hidden.source += "\n### BEGIN HIDDEN TESTS\n    assert_close(torch.softmax(scores(q, k), dim=-1), expected,"
    problems = leaks(ROOT, "01_attention", release)
    assert any("math.sqrt(self.d_head)" in p for p in problems)
    assert any("markers left" in p or "marker-like" in p for p in problems)
    assert any("assert_close(torch.softmax(scores" in p for p in problems)
    code.source = "# YOUR CODE HERE\nraise NotImplementedError()"
    assert any("a stub where the planted bug should be" in p for p in leaks(ROOT, "01_attention", release))
