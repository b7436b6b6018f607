"""Invariants 4 and 5, with real nbgrader: every bug is caught, isolated, and every fix passes.

One run grades, per notebook: the solution, the untouched release, and for each bug the
solution with only that bug and the release with only that bug fixed (see bugmatrix.py).
"""
import pytest

from conftest import ROOT
from transformer_debug.authoring.bugmatrix import bug_matrix, summary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reports():
    return bug_matrix(ROOT)


def test_the_solution_scores_full_marks_on_every_autograded_cell(reports):
    for r in reports:
        failing = [c for c, ok in r["results"]["solution"].items() if not ok]
        assert not failing, f"{r['assignment']}: the solution fails {failing}"


def test_the_untouched_release_scores_zero_on_every_bug_test(reports):
    for r in reports:
        passing = [c for c, ok in r["results"]["release"].items()
                   if ok and any(c in b["caught_by"] for b in r["bugs"].values())]
        assert not passing, f"{r['assignment']}: the untouched release passes {passing}"


def test_every_bug_fails_exactly_the_cells_the_catalog_links_to_it(reports):
    for r in reports:
        for bug, b in r["bugs"].items():
            assert b["caught"], f"{bug}: fails {b['failing']}, but the catalog says {b['caught_by']}"


def test_fixing_any_one_bug_earns_points_while_the_others_remain(reports):
    for r in reports:
        for bug, b in r["bugs"].items():
            assert b["isolated"], f"{bug}: no cell linked to it alone passes when only it is fixed"


def test_the_summary_line(reports):
    table, ok = summary(reports)
    n = sum(len(r["bugs"]) for r in reports)
    assert ok and table.endswith(f"bugs: {n}, caught: {n}, isolated: {n}, fixes pass: yes")
