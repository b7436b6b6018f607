"""What counts as a change to a generated notebook: what an author wrote, and what nbval compares.

`course release` executes every solution again. Another run, or another machine, gives
other image bytes, widget ids and widget state (elapsed times), execution counts, stream
chunks ("text" and "\\n" as one message or two) and raw numbers in cells whose output nbval
ignores. None of that is something nbval checks or an author wrote, so a tracked notebook
is rewritten only when `differences` finds a real change, and is otherwise left byte for
byte alone: `make release` then leaves `git status` clean on any machine.

The output rules are nbval's own (nbval 0.11.0, plugin.py, run as `make test` runs it:
`--nbval --nbval-sanitize-with tests/nbval_sanitize.cfg`).
"""
from __future__ import annotations

import copy
import re
from collections import defaultdict
from pathlib import Path

import nbformat
from nbval.plugin import (coalesce_streams, find_comment_markers, find_metadata_tags, get_sanitize_patterns,
                          transform_streams_for_comparison)

from .catalog import CatalogError

__all__ = ["differences", "write_if_changed", "keep_if_unchanged", "sanitize_patterns", "SANITIZE_FILE"]

SANITIZE_FILE = Path("tests") / "nbval_sanitize.cfg"  # what the Makefile passes to --nbval-sanitize-with

# nbval's IPyNbFile.skip_compare without --nbdime: never compared, images included.
SKIP_COMPARE = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")

# Notebook metadata that the executing machine writes, not the author: widget state
# (random ids, elapsed times) and the kernel's language_info (the Python patch version).
MACHINE_METADATA = ("widgets", "language_info")


def sanitize_patterns(root: Path) -> list[tuple[str, str]]:
    """The (regex, replacement) pairs nbval applies before comparing, from the course's config."""
    path = root / SANITIZE_FILE
    if not path.exists():
        raise CatalogError(f"{path} is missing: it says which output differences nbval ignores")
    return get_sanitize_patterns(path.read_text())


def _checked(cell: nbformat.NotebookNode) -> bool:
    """Whether nbval compares this code cell's outputs (strict mode, as `make test` runs it)."""
    options = dict(find_metadata_tags(cell.metadata))
    options.update(find_comment_markers(cell.source))  # comments win over tags, as in nbval
    return (options.get("check", True) and not options.get("skip", False)
            and cell.get("execution_count") is not None)


def _compared_outputs(outputs: list, patterns: list[tuple[str, str]]) -> dict[str, list]:
    """The outputs as nbval's compare_outputs sees them: streams merged, each key's values in order."""
    def clean(value):
        if isinstance(value, str):
            for regex, replace in patterns:
                value = re.sub(regex, replace, value)
        return value

    flat = defaultdict(list)
    for output in transform_streams_for_comparison(coalesce_streams(copy.deepcopy(outputs))):
        for key, value in output.items():
            if key in SKIP_COMPARE:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIP_COMPARE:
                        flat[mime].append(clean(data))
            else:
                flat[key].append(clean(value))
    return dict(flat)


def _author_view(cell: nbformat.NotebookNode) -> dict:
    """Everything of a cell but its outputs and execution count."""
    return {k: v for k, v in cell.items() if k not in ("outputs", "execution_count")}


def differences(old: nbformat.NotebookNode, new: nbformat.NotebookNode,
                patterns: list[tuple[str, str]]) -> list[str]:
    """What differs between two versions of a notebook that matters (empty: nothing), one phrase each."""
    found = []
    if (old.nbformat, old.nbformat_minor) != (new.nbformat, new.nbformat_minor):
        found.append(f"nbformat {old.nbformat}.{old.nbformat_minor} -> {new.nbformat}.{new.nbformat_minor}")
    keys = sorted({k for k in (*old.metadata, *new.metadata) if k not in MACHINE_METADATA
                   and old.metadata.get(k) != new.metadata.get(k)})
    if keys:
        found.append(f"notebook metadata {', '.join(keys)}")
    if len(old.cells) != len(new.cells):
        found.append(f"{len(old.cells)} cells -> {len(new.cells)}")
    for index, (a, b) in enumerate(zip(old.cells, new.cells), start=1):
        if _author_view(a) != _author_view(b):
            what = [k for k in sorted({*_author_view(a), *_author_view(b)}) if a.get(k) != b.get(k)]
            found.append(f"cell {index} {', '.join(what)}")
        elif a.cell_type == "code":
            if _checked(a) != _checked(b):
                found.append(f"cell {index} output checking")
            elif _checked(a) and (_compared_outputs(a.outputs, patterns) != _compared_outputs(b.outputs, patterns)):
                found.append(f"cell {index} outputs")
    return found


def write_if_changed(path: Path, fresh: nbformat.NotebookNode, patterns: list[tuple[str, str]]) -> list[str]:
    """Write `fresh` to `path` unless the notebook there differs from it in nothing that matters.

    Returns why it was written (empty: the file was left alone, byte for byte).
    """
    if not path.exists():
        reasons = ["new file"]
    else:
        try:
            reasons = differences(nbformat.read(path, as_version=4), fresh, patterns)
        except Exception as err:  # noqa: BLE001 (a broken generated file is replaced, and said so)
            reasons = [f"the old file could not be read ({type(err).__name__}: {err})"]
    if reasons:
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(fresh, path)
    return reasons


def keep_if_unchanged(path: Path, before: bytes | None, patterns: list[tuple[str, str]]) -> list[str]:
    """For a file another tool has just rewritten (nbgrader): put back `before`, its old bytes,
    unless the new notebook differs from them in something that matters.

    Returns why the new file stays (empty: the old bytes are back, or nothing changed at all).
    """
    if before is None:
        return ["new file"]
    after = path.read_bytes()
    if after == before:
        return []
    try:
        reasons = differences(nbformat.reads(before.decode(), as_version=4), nbformat.read(path, as_version=4), patterns)
    except Exception as err:  # noqa: BLE001 (a broken old file is replaced, and said so)
        reasons = [f"the old file could not be read ({type(err).__name__}: {err})"]
    if not reasons:
        path.write_bytes(before)
    return reasons
