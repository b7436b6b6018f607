"""`course answer-key`: one page per assignment, every bug on exactly its page, no test code."""
import html
import re

import pytest

from conftest import ROOT
from transformer_debug.authoring import markers
from transformer_debug.authoring.builds import read_source
from transformer_debug.authoring.catalog import Catalog
from transformer_debug.authoring.cli import main
from transformer_debug.authoring.rubric import model_report

CATALOG = Catalog.load(ROOT)


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _hidden_lines(assignment: str) -> set[str]:
    """Lines of the hidden tests that a student never sees in the release."""
    _, source = read_source(ROOT, assignment)
    [release] = (ROOT / "release" / assignment).glob("*.ipynb")
    public = {line.strip() for line in release.read_text().replace("\\n", "\n").splitlines()}
    hidden = set()
    for cell in source.cells:
        parsed = markers.parse(cell.source)
        for region in parsed.regions:
            if region.kind == "hidden":
                hidden |= {line.strip() for line in parsed.lines[region.start + 1:region.end]}
    return {line for line in hidden - public if len(line) >= 12}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("answer-key")
    assert main(["--root", str(ROOT), "answer-key", "--out", str(out)]) == 0
    return {p.stem: p.read_text() for p in out.glob("*.html")}


def test_every_bug_is_on_exactly_its_assignments_page(pages):
    assert set(pages) == {*CATALOG.assignments, "index"}
    for bug in CATALOG.bugs:
        on = [a for a in CATALOG.assignments if f'id="{bug.id}"' in pages[a]]
        assert on == [bug.notebook], f"{bug.id} is on {on}"
        text = _text(pages[bug.notebook])
        for field in (bug.title, bug.category, bug.symptom, bug.root_cause, bug.fix, *bug.caught_by):
            assert field in text, f"{bug.id}: {field!r} missing"
    for assignment in CATALOG.assignments:
        assert f'href="{assignment}.html"' in pages["index"]


def test_the_answer_key_carries_the_model_report_and_no_test_code(pages):
    for assignment in CATALOG.assignments:
        page, text = pages[assignment], _text(pages[assignment])
        assert "Model defect report" in text and "BEGIN SOLUTION" not in text
        assert "BEGIN HIDDEN TESTS" not in text and "END HIDDEN TESTS" not in text
        # A hidden line that the page's own sources quote (a fix such as `generator=...` in the catalog,
        # `cache.reset()` in the model report) is theirs, not a leak.
        quoted = " ".join(f"{b.symptom} {b.root_cause} {b.fix}" for b in CATALOG.for_notebook(assignment))
        quoted += model_report(ROOT, assignment)
        hidden = _hidden_lines(assignment)
        assert len(hidden) >= 5, f"{assignment}: too few hidden lines to check ({hidden})"
        leaked = [line for line in hidden if line in text and line not in quoted]
        assert leaked == [], f"{assignment}: hidden test lines on the answer key: {leaked[:3]}"
        # Self-contained: nothing fetched from elsewhere.
        assert not re.search(r"(src|href)=\"(https?:)?//|<link|<script|@import", page)


def test_catalog_text_is_escaped(course, tmp_path):
    toml = course / "bugs.toml"
    title = 'title = "Heads merged with view after transpose"'
    assert title in toml.read_text()
    toml.write_text(toml.read_text().replace(title, 'title = "Heads <script>alert(1)</script> & \\"merged\\""'))
    assert main(["--root", str(course), "answer-key", "01_attention", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "01_attention.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;merged&quot;" in page
    assert not (tmp_path / "02_masking.html").exists()


def test_an_unknown_assignment_is_a_clear_error(tmp_path, capsys):
    assert main(["--root", str(ROOT), "answer-key", "99_nothing", "--out", str(tmp_path)]) == 2
    assert "unknown assignment(s) ['99_nothing']" in capsys.readouterr().err
