"""Executed notebooks written the same way on every run, so a re-executed notebook does not churn.

Widget ids. A tqdm progress bar in a notebook is a tree of ipywidgets models (a box, its bar
and labels, their layouts and styles), and ipywidgets names each model with a random uuid4.
Those ids appear twice in the executed notebook: in the output that shows the widget
(`model_id`) and in the notebook's widget-state metadata (as keys, and as "IPY_MODEL_<id>"
references between models). `stable_widget_ids` replaces every id by one derived from where
the model sits: the notebook's name, the cell and output that show it, and the path from there.

Stream chunks. `print("x")` reaches the notebook as one stream message or as "x" and "\n",
depending on when the kernel flushes. `merge_streams` joins neighbouring outputs of the same
stream, as JupyterLab shows them and as nbval compares them.
"""
from __future__ import annotations

import hashlib
import json

import nbformat

__all__ = ["stabilize", "stable_widget_ids", "merge_streams", "VIEW", "STATE"]

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
REF = "IPY_MODEL_"


def _refs(value, path: str):
    """(path, id) of every model reference inside a model's state, in a fixed order."""
    if isinstance(value, str) and value.startswith(REF):
        yield path, value[len(REF):]
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _refs(value[key], f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _refs(item, f"{path}[{i}]")


def _renamed(value, new: dict[str, str]):
    if isinstance(value, str) and value.startswith(REF):
        return REF + new.get(value[len(REF):], value[len(REF):])
    if isinstance(value, dict):
        return {key: _renamed(item, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, new) for item in value]
    return value


def stable_widget_ids(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Rename every widget model of `nb` in place (and return it); `name` keeps two notebooks' ids apart."""
    state = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    new: dict[str, str] = {}

    def claim(old: str, where: str) -> None:
        if old in new:
            return
        new[old] = hashlib.sha256(f"{name}: {where}".encode()).hexdigest()[:32]
        for path, ref in _refs(state.get(old, {}).get("state", {}), where):
            claim(ref, path)

    for c, cell in enumerate(nb.cells):
        for o, output in enumerate(cell.get("outputs", [])):
            view = output.get("data", {}).get(VIEW)
            if view is not None:
                claim(view["model_id"], f"cell {c} output {o}")
    # Models no output shows: named by their content, which holds no id once references are blanked.
    unshown = [old for old in state if old not in new]
    blank = {old: "" for old in state}
    for n, old in enumerate(sorted(unshown, key=lambda m: json.dumps(_renamed(state[m], blank), sort_keys=True))):
        claim(old, f"unshown model {n}")

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(VIEW)
            if view is not None:
                view["model_id"] = new[view["model_id"]]
    if state:
        nb.metadata.widgets[STATE]["state"] = nbformat.from_dict(
            {new[old]: _renamed(model, new) for old, model in sorted(state.items(), key=lambda kv: new[kv[0]])})
    return nb


def merge_streams(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Join neighbouring outputs of the same stream (stdout, stderr) in every cell, in place."""
    for cell in nb.cells:
        merged = []
        for output in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if (output.output_type == "stream" and last is not None and last.output_type == "stream"
                    and last.name == output.name):
                last.text += output.text
            else:
                merged.append(output)
        if "outputs" in cell:
            cell.outputs = merged
    return nb


def stabilize(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Both of the above, in place; `name` (the notebook's path in the course) keeps notebooks' ids apart."""
    return merge_streams(stable_widget_ids(nb, name))
