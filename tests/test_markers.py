"""Markers: rendering the three kinds of notebook, and loud errors for anything malformed."""
import pytest

from transformer_debug.authoring.markers import MarkerError, parse, plant, solution, strip_hidden_tests

CELL = """def f(x):
    ### BEGIN SOLUTION
    y = x + 1
    ### END SOLUTION
    ### BEGIN BUG off-by-one
    # y = x
    #
    # if y:
    #     y = -y
    ### END BUG
    ### BEGIN SOLUTION
    z = 2
    ### END SOLUTION
    return y"""


def test_solution_has_the_fix_and_no_markers():
    assert solution(CELL) == "def f(x):\n    y = x + 1\n    z = 2\n    return y"


def test_planting_uncomments_the_bug_and_keeps_indentation():
    out = plant(CELL, {"off-by-one"})
    assert "    y = x\n\n    if y:\n        y = -y\n" in out
    assert "y = x + 1" not in out
    # The ordinary solution region stays for nbgrader to turn into a stub.
    assert "### BEGIN SOLUTION\n    z = 2\n    ### END SOLUTION" in out


def test_mutant_is_solution_with_one_bug():
    assert solution(CELL, {"off-by-one"}) == "def f(x):\n    y = x\n\n    if y:\n        y = -y\n    z = 2\n    return y"


def test_an_empty_bug_region_plants_a_deletion():
    cell = "a = 1\n### BEGIN SOLUTION\na = a / 2\n### END SOLUTION\n### BEGIN BUG no-halving\n### END BUG\nb = a"
    assert solution(cell, {"no-halving"}) == "a = 1\nb = a"
    assert solution(cell) == "a = 1\na = a / 2\nb = a"


def test_hidden_tests_are_kept_as_code_in_solutions():
    cell = "# graded\n### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS"
    assert solution(cell) == strip_hidden_tests(cell) == "# graded\nassert 1"


def test_pairs_and_ids():
    parsed = parse(CELL)
    assert parsed.bug_ids == ["off-by-one"]
    assert [p.bug.bug_id for p in parsed.pairs] == ["off-by-one"]


@pytest.mark.parametrize("source, line, words", [
    ("### BEGIN SOLUTION\nx = 1", 1, "never closed"),
    ("### BEGIN SOLUTION\nx\n### END SOLUTION\n### BEGIN BUG b\n# y", 4, "never closed"),
    ("x = 1\n### END SOLUTION", 2, "without a matching BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", 2, "do not nest"),
    ("x = 1\n### BEGIN BUG lonely\n# y\n### END BUG", 2, "does not directly follow"),
    ("### BEGIN SOLUTION\nx\n### END SOLUTION\n\n### BEGIN BUG gap\n### END BUG", 5, "does not directly follow"),
    ("### BEGIN SOLUTION\nx\n### END SOLUTION\n### BEGIN BUG Bad_Id\n### END BUG", 4, "bad bug id"),
    ("### BEGIN SOLUTION\nx\n### END SOLUTION\n### BEGIN BUG b\ny = 2\n### END BUG", 5, "not commented out"),
    ("## BEGIN SOLUTION\nx\n### END SOLUTION", 1, "malformed marker"),
    ("### begin solution\nx\n### END SOLUTION", 1, "malformed marker"),
    ("x = 1  ### BEGIN SOLUTION", 1, "malformed marker"),
    ("### BEGIN SOLUTION\nx\n### END SOLUTION\n### BEGIN BUG b\n### END BUG b", 5, "malformed marker"),
])
def test_malformed_markers_name_file_cell_and_line(source, line, words):
    with pytest.raises(MarkerError) as err:
        plant(source, set(), where="nb.ipynb, cell 3")
    assert err.value.line == line
    assert words in str(err.value)
    assert str(err.value).startswith(f"nb.ipynb, cell 3, line {line}:")


def test_prose_that_mentions_begin_is_not_a_marker():
    assert solution("# we begin here; the end is near\nx = 1") == "# we begin here; the end is near\nx = 1"
