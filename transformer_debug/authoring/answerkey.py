"""The answer key: one self-contained HTML page per assignment, for students after the deadline.

Everything on it comes from bugs.toml (each bug's title, category, symptom, root cause, fix and
the test cells that catch it) and from the author's defect report in source/. It names test
cells by their grade id only: no test code, hidden or visible, is ever copied onto it. Plain
HTML with its style inline and every text escaped, so a page opens anywhere, offline.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from .catalog import Catalog
from .rubric import model_report

__all__ = ["answer_key_page", "write_answer_keys"]

STYLE = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
         "dt{font-weight:600;margin-top:.4rem}dd{margin-left:1.5rem}code{background:#f3f3f3;padding:0 .2rem}"
         "pre{white-space:pre-wrap;background:#f7f7f7;padding:1rem;border-left:3px solid #ccc}"
         "section{border-top:1px solid #ddd;margin-top:1.5rem}")


def _page(title: str, body: list[str]) -> str:
    return "\n".join(['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
                      f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
                      *body, "</body>", "</html>", ""])


def answer_key_page(catalog: Catalog, assignment: str) -> str:
    bugs = catalog.for_notebook(assignment)
    body = [f"<h1>Answer key: {escape(assignment)}</h1>",
            f"<p>The {len(bugs)} planted bugs of this notebook, what they looked like, why they happened "
            "and how to fix them. Any fix that passes the tests is right; the one given here is one of "
            "them.</p>"]
    for n, bug in enumerate(bugs, 1):
        tests = ", ".join(f"<code>{escape(cell)}</code>" for cell in bug.caught_by)
        body += [f'<section id="{escape(bug.id)}">',
                 f"<h2>{n}. {escape(bug.title)}</h2>",
                 "<dl>",
                 f"<dt>Bug id</dt><dd><code>{escape(bug.id)}</code></dd>",
                 f"<dt>Category</dt><dd>{escape(bug.category)}</dd>",
                 f"<dt>Symptom</dt><dd>{escape(bug.symptom)}</dd>",
                 f"<dt>Root cause</dt><dd>{escape(bug.root_cause)}</dd>",
                 f"<dt>Fix</dt><dd>{escape(bug.fix)}</dd>",
                 f"<dt>Tests that catch it</dt><dd>{tests}</dd>",
                 "</dl>", "</section>"]
    body += ["<section>", "<h2>Model defect report</h2>",
             f"<pre>{escape(model_report(catalog.root, assignment))}</pre>", "</section>",
             '<p><a href="index.html">All assignments</a></p>']
    return _page(f"Answer key: {assignment}", body)


def write_answer_keys(catalog: Catalog, assignments: list[str], out: Path) -> list[Path]:
    """<out>/<assignment>.html for each assignment, and <out>/index.html linking them."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for assignment in assignments:
        path = out / f"{assignment}.html"
        path.write_text(answer_key_page(catalog, assignment), encoding="utf-8")
        written.append(path)
    items = [f'<li><a href="{escape(p.name)}">{escape(p.stem)}</a> '
             f"({len(catalog.for_notebook(p.stem))} bugs)</li>" for p in written]
    index = out / "index.html"
    index.write_text(_page("Answer keys", ["<h1>Answer keys</h1>", "<ul>", *items, "</ul>"]), encoding="utf-8")
    return [*written, index]
