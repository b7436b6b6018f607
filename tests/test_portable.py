"""Notebook outputs that nbval compares are the same on every x86-64 CPU.

The main nbval run (make test) uses the kernels torch picks for this processor. Here nbval runs
the notebooks that train once more under another selection (ATEN_CPU_CAPABILITY=default, the
scalar kernels), so a printed number that depends on the instruction set fails on this machine
rather than on a student's.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from transformer_debug.portable import in_bands

OTHER_SELECTION = "default"
NBVAL = [sys.executable, "-m", "pytest", "-q", "--nbval", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]


def test_in_bands_says_yes_inside_and_no_outside_or_not_finite():
    lines = in_bands({"loss": 1.3, "far": 3.2, "nan": float("nan"), "edge": 2.0},
                     {"loss": (1.24, 1.4), "far": (1.24, 1.4), "nan": (0, 1), "edge": (1, 2)}).splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["yes", "NO", "NO", "yes"]
    assert lines[0] == "loss  expected 1.24 to 1.4: yes"
    assert "3.2" not in lines[1], "the raw value belongs in the ignored cell, not in the compared line"


def test_in_bands_accepts_a_point_band_for_counts():
    assert in_bands({"NaN steps": 0}, {"NaN steps": (0, 0)}).endswith("yes")
    assert in_bands({"NaN steps": 3}, {"NaN steps": (0, 0)}).endswith("NO")


@pytest.mark.parametrize("results, expected, error", [
    ({"loss": 1.3}, {"los": (1, 2)}, KeyError),             # a typo must not check nothing
    ({"loss": 1.3, "acc": 0.9}, {"loss": (1, 2)}, KeyError),  # a result without a band
    ({"loss": 1.3}, {"loss": (2, 1)}, ValueError),          # an empty band
])
def test_in_bands_refuses_mismatched_names_and_empty_bands(results, expected, error):
    with pytest.raises(error):
        in_bands(results, expected)


def _ignored(cell) -> bool:
    """nbval ignores a cell's output by tag or by a comment line of its own."""
    return ("nbval-ignore-output" in cell["metadata"].get("tags", [])
            or any(line.strip() == "# NBVAL_IGNORE_OUTPUT" for line in "".join(cell["source"]).splitlines()))


def _ignored_cells(path):
    cells = json.loads(path.read_text())["cells"]
    return cells, [i for i, c in enumerate(cells) if c["cell_type"] == "code" and _ignored(c)]


def notebooks_that_train():
    """The executed solutions with a cell whose raw output nbval ignores (the cells that train)."""
    return sorted(p for p in (ROOT / "notebooks").glob("*/*.ipynb") if _ignored_cells(p)[1])


@pytest.mark.parametrize("path", notebooks_that_train(), ids=lambda p: p.parent.name)
def test_every_ignored_cell_is_followed_by_a_band_check(path):
    """An ignored cell alone would let a fix that breaks training pass nbval unnoticed."""
    cells, ignored = _ignored_cells(path)
    for i in ignored:
        follower = "".join(cells[i + 1]["source"]) if i + 1 < len(cells) else ""
        assert "in_bands(" in follower, f"{path.name}, cell {i + 1}: its output is ignored, but the next cell checks no band"
        printed = "".join("".join(o.get("text", "")) for o in cells[i + 1].get("outputs", []))
        assert "yes" in printed.split() and "NO" not in printed.split(), \
            f"{path.name}, cell {i + 2}: the solution's stored band check does not say yes throughout:\n{printed}"


def _env(selection):
    return {**os.environ, "ATEN_CPU_CAPABILITY": selection, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.mark.slow
def test_nbval_passes_under_another_kernel_selection():
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    native = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}).stdout.strip()
    if native == OTHER_SELECTION.upper():
        pytest.skip(f"this CPU has no vector kernels ({native}): there is no other selection to try")
    # The switch must take effect, or the second run proves nothing.
    chosen = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=_env(OTHER_SELECTION)).stdout.strip()
    assert chosen == OTHER_SELECTION.upper(), f"ATEN_CPU_CAPABILITY={OTHER_SELECTION} gave {chosen!r}"
    paths = [str(p.relative_to(ROOT)) for p in notebooks_that_train()]
    assert paths, "no notebook marks a training cell: nothing would be compared across selections"
    proc = subprocess.run([*NBVAL, *paths], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=_env(OTHER_SELECTION))
    assert proc.returncode == 0, (f"nbval fails with ATEN_CPU_CAPABILITY={OTHER_SELECTION} (this CPU: {native}):\n"
                                  f"{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")


@pytest.mark.slow
def test_a_band_check_fails_nbval_when_a_bug_breaks_training(tmp_path):
    """The check cells can fail: plant a bug that trains to a loss far below the floor in the
    executed solution of 01 and nbval flags the band check after the training cell."""
    import nbformat
    from transformer_debug.authoring import builds, markers

    nb = nbformat.read(ROOT / "notebooks" / "01_attention" / "attention.ipynb", as_version=4)
    where, source = builds.answer_cell(ROOT, "01_attention", "attention-code")
    [answer] = [c for c in nb.cells if c.id == "attention-code"]
    answer.source = markers.solution(source, frozenset({"attention-head-split"}), where)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    check = next(i for i, c in enumerate(code_cells) if c.id == "check-reproduce")
    nbformat.write(nb, tmp_path / "attention.ipynb")
    proc = subprocess.run([*NBVAL, str(tmp_path / "attention.ipynb")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert f"::Cell {check} " in proc.stdout and ": NO" in proc.stdout, proc.stdout[-3000:]
