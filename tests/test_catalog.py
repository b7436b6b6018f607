"""The catalog and the markers agree; every disagreement is an error that says where."""
import re

import pytest

from conftest import ROOT, edit_cell
from transformer_debug.authoring.catalog import CATEGORIES, Catalog, CatalogError
from transformer_debug.authoring.markers import MarkerError

NB01 = "source/01_attention/attention.ipynb"


def test_the_course_catalog_is_consistent():
    catalog = Catalog.load(ROOT)
    catalog.check()
    assert len(catalog.for_notebook("01_attention")) >= 3
    for bug in catalog.bugs:
        assert bug.category in CATEGORIES


def test_an_unknown_bug_id_in_a_notebook_is_an_error(course):
    edit_cell(course / NB01, "attention-code", lambda s: s.replace(
        "BEGIN BUG attention-missing-scale", "BEGIN BUG attention-missing-scael"))
    with pytest.raises(MarkerError, match=r"attention\.ipynb, cell \d+: bug 'attention-missing-scael' is not in"):
        Catalog.load(course).check()


def test_a_catalog_bug_without_markers_is_an_error(course):
    text = (course / "bugs.toml").read_text()
    (course / "bugs.toml").write_text(text.replace('id = "attention-missing-scale"', 'id = "attention-ghost"'))
    with pytest.raises((CatalogError, MarkerError), match="attention-(ghost|missing-scale)"):
        Catalog.load(course).check()


@pytest.mark.parametrize("old, new, message", [
    ('category = "attention arithmetic"', 'category = "vibes"', "unknown category"),
    ('"hidden-scores", "hidden-vs-torch"]', '"hidden-scores", "hidden-typo"]', "not autograded test cells"),
    ('caught_by = ["visible-soft-start", "hidden-scores", "hidden-vs-torch"]', 'caught_by = []', "non-empty list"),
    ('title = "Scores not divided by sqrt(d_head)"\n', '', "missing \\['title'\\]"),
    ('id = "attention-missing-scale"', 'id = "attention-softmax-dim"', "duplicate id"),
    ('[[bug]]\nid = "attention-head-split"', '[[bug]]\nid = "attention-head-split"\nseverity = 3', "unknown \\['severity'\\]"),
    ('[[bug]]\nid = "attention-merge-heads"', '[[bugs]]\nid = "attention-merge-heads"', "unknown top-level keys"),
])
def test_malformed_catalog_entries_are_errors(course, old, new, message):
    text = (course / "bugs.toml").read_text()
    assert old in text, "the test's own fixture text must exist in bugs.toml"
    (course / "bugs.toml").write_text(text.replace(old, new, 1))
    with pytest.raises(CatalogError, match=message):
        Catalog.load(course).check()


def test_unknown_bug_id_lookup_lists_the_known_ones():
    with pytest.raises(CatalogError, match=re.escape("unknown bug id 'nope'; known: attention-")):
        Catalog.load(ROOT).get("nope")
