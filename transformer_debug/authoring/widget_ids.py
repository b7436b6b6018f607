"""Widget ids that are the same on every run, so a re-executed notebook does not churn.

A tqdm progress bar in a notebook is a tree of ipywidgets models (a box, its bar and
labels, their layouts and styles), and ipywidgets names each model with a random uuid4.
Those ids appear twice in the executed notebook: in the output that shows the widget
(`model_id`) and in the notebook's widget-state metadata (as keys, and as "IPY_MODEL_<id>"
references between models). Here every id is replaced by one derived from where the model
sits: the notebook's name, the cell and output that show it, and the path from there.
"""
from __future__ import annotations

import hashlib
import json

import nbformat

__all__ = ["stable_widget_ids", "VIEW", "STATE"]

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
