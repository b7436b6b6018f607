"""`course release` rewrites a tracked notebook only for a change that matters.

Each "unchanged" case also asserts that the bytes differ, so a naive byte comparison
would call it a change; each "changed" case is one that a rule ignoring too much misses.
"""
import base64
import copy
import json
import re
import uuid

import nbformat
import pytest

from conftest import ROOT
from transformer_debug.authoring.changes import differences, keep_if_unchanged, sanitize_patterns, write_if_changed
from transformer_debug.authoring.stable import STATE, VIEW, merge_streams, stable_widget_ids

NOTEBOOK = ROOT / "notebooks" / "04_blocks" / "blocks.ipynb"  # figures, a progress bar, ignored cells
PATTERNS = sanitize_patterns(ROOT)


@pytest.fixture
def pair():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return nb, copy.deepcopy(nb)


def _bytes_differ(a, b) -> bool:
    return nbformat.writes(a) != nbformat.writes(b)


def _cell(nb, checked: bool, having: str):
    """(index, cell): the first code cell whose outputs nbval compares (or ignores) and that has `having`."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        ignored = "nbval-ignore-output" in cell.metadata.get("tags", [])
        if ignored != checked and any(having in json.dumps(o) for o in cell.outputs):
            return index, cell
    raise LookupError(f"no {'checked' if checked else 'ignored'} cell with {having!r} in {NOTEBOOK}")


def _random_widget_ids(nb):
    """What another run writes: every model id replaced by a fresh uuid4, consistently."""
    state = nb.metadata.widgets[STATE]["state"]
    text = nbformat.writes(nb)
    for old in list(state):
        text = text.replace(old, uuid.uuid4().hex)
    return nbformat.reads(text, as_version=4)


def test_other_image_bytes_are_no_change(pair):
    old, new = pair
    index, cell = _cell(new, checked=True, having="image/png")  # even in a cell whose text nbval compares
    [output] = [o for o in cell.outputs if "image/png" in o.get("data", {})]
    png = base64.b64decode(output.data["image/png"])
    output.data["image/png"] = base64.b64encode(png[:-12] + b"\x00" * 12).decode()
    assert _bytes_differ(old, new)
    assert differences(old, new, PATTERNS) == []


def test_other_widget_ids_and_widget_state_are_no_change(pair):
    old, new = pair
    new = _random_widget_ids(new)
    # and the bar's elapsed time, which the widget state records
    text = json.dumps(new.metadata.widgets).replace("00:", "07:")
    new.metadata.widgets = nbformat.from_dict(json.loads(text))
    assert _bytes_differ(old, new)
    assert differences(old, new, PATTERNS) == []


def test_other_execution_counts_and_stream_chunks_are_no_change(pair):
    old, new = pair
    for cell in new.cells:
        if cell.cell_type == "code":
            cell.execution_count = (cell.execution_count or 0) + 100
    # print("x") may reach the notebook as one stream message or as "x" and "\n"
    index, cell = _cell(new, checked=True, having="your test passes")
    [output] = cell.outputs
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output.text.rstrip("\n")),
                     nbformat.v4.new_output("stream", name="stdout", text="\n")]
    assert _bytes_differ(old, new)
    assert differences(old, new, PATTERNS) == []


def test_a_number_in_an_ignored_output_is_no_change(pair):
    old, new = pair
    index, cell = _cell(new, checked=False, having="after 200 steps")
    for output in cell.outputs:
        if output.output_type == "stream":
            output.text = re.sub(r"after 200 steps \d\.\d+", "after 200 steps 9.999", output.text)
    assert _bytes_differ(old, new)
    assert differences(old, new, PATTERNS) == []


def test_a_sanitized_memory_address_is_no_change(pair):
    old, new = pair
    index, cell = _cell(new, checked=True, having="your test passes")
    cell.outputs[0].text = "<object at 0x7f00aa>\n"
    old.cells[index].outputs[0].text = "<object at 0x7f11bb>\n"
    assert _bytes_differ(old, new)
    assert differences(old, new, PATTERNS) == []


def test_a_compared_output_is_a_change(pair):
    old, new = pair
    index, cell = _cell(new, checked=True, having="expected 1.25 to 1.55: yes")
    cell.outputs[0].text = cell.outputs[0].text.replace("expected 1.25 to 1.55: yes", "expected 1.25 to 1.55: NO")
    assert differences(old, new, PATTERNS) == [f"cell {index + 1} outputs"]


def test_a_source_or_a_tag_is_a_change(pair):
    old, new = pair
    code, cell = _cell(new, checked=True, having="your test passes")
    cell.source += "\n# one more line"
    ignored, cell = _cell(new, checked=False, having="after 200 steps")
    cell.metadata.tags = []  # nbval would now compare its outputs
    assert differences(old, new, PATTERNS) == [f"cell {ignored + 1} metadata", f"cell {code + 1} source"]
    new.cells.pop()
    assert f"{len(old.cells)} cells -> {len(new.cells)}" in differences(old, new, PATTERNS)


def test_widget_ids_do_not_depend_on_the_run(pair):
    one, two = (stable_widget_ids(_random_widget_ids(nb), "notebooks/04_blocks/blocks.ipynb") for nb in pair)
    assert nbformat.writes(one) == nbformat.writes(two)
    state = one.metadata.widgets[STATE]["state"]
    shown = [o.data[VIEW]["model_id"] for c in one.cells for o in c.get("outputs", []) if VIEW in o.get("data", {})]
    refs = set(re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state)))
    assert shown and set(shown) <= set(state) and refs and refs <= set(state)  # nothing left dangling
    other = stable_widget_ids(copy.deepcopy(pair[0]), "notebooks/06_data/data.ipynb")
    assert not set(other.metadata.widgets[STATE]["state"]) & set(state)  # two notebooks never share an id


def test_an_unchanged_notebook_keeps_its_bytes_and_a_changed_one_is_written(tmp_path, pair):
    old, new = pair
    path = tmp_path / "nb.ipynb"
    committed = NOTEBOOK.read_bytes()
    path.write_bytes(committed)
    for cell in new.cells:
        if cell.cell_type == "code":
            cell.execution_count = None if cell.execution_count is None else cell.execution_count + 1
    assert write_if_changed(path, new, PATTERNS) == []
    assert path.read_bytes() == committed
    new.cells[0].source += " Edited."
    assert write_if_changed(path, new, PATTERNS) == ["cell 1 source"]
    assert nbformat.read(path, as_version=4).cells[0].source.endswith(" Edited.")
    # a file another tool rewrote (nbgrader's release) gets its old bytes back when nothing matters
    path.write_bytes(committed)
    nbformat.write(nbformat.reads(committed.decode(), as_version=4), path, version=4)
    path.write_text(path.read_text().replace('"nbformat_minor": 5', '"nbformat_minor":  5'))
    assert path.read_bytes() != committed
    assert keep_if_unchanged(path, committed, PATTERNS) == []
    assert path.read_bytes() == committed


def test_stream_chunks_are_written_the_same_way_on_every_run(pair):
    one, two = pair
    stream = nbformat.v4.new_output
    for nb, chunks in ((one, ["a = 1\n", "b = 2\n"]), (two, ["a = 1", "\n", "b = 2\n"])):
        nb.cells[-1].outputs = [*(stream("stream", name="stdout", text=t) for t in chunks),
                                stream("stream", name="stderr", text="warning\n"),
                                stream("stream", name="stdout", text="after the warning\n")]
    assert _bytes_differ(one, two)
    assert nbformat.writes(merge_streams(one)) == nbformat.writes(merge_streams(two))
    # stdout and stderr stay apart and in their order, as JupyterLab shows them
    assert [(o.name, o.text) for o in one.cells[-1].outputs] == [
        ("stdout", "a = 1\nb = 2\n"), ("stderr", "warning\n"), ("stdout", "after the warning\n")]
