"""`course release` on a notebook that another machine executed leaves `git status` clean."""
import base64
import os
import shutil
import struct
import uuid
import zlib

import nbformat
import pytest

from conftest import ROOT
from transformer_debug.authoring.builds import copy_course
from transformer_debug.authoring.changes import SANITIZE_FILE
from transformer_debug.authoring.cli import main
from transformer_debug.authoring.stable import STATE

# The quickest notebook that has a progress bar (widgets) as well as figures.
ASSIGNMENT, NAME = "07_optimizer", "optimizer.ipynb"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def as_another_machine_wrote_it(nb):
    """Other PNG bytes (a text chunk, as another matplotlib writes), new random widget ids, other counts."""
    images = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                png = base64.b64decode(output.data["image/png"])
                header = 8 + 25  # signature, then the IHDR chunk
                text = _png_chunk(b"tEXt", b"Software\x00Matplotlib version3.99.0, https://matplotlib.org/")
                output.data["image/png"] = base64.b64encode(png[:header] + text + png[header:]).decode()
                images += 1
        if cell.cell_type == "code" and cell.execution_count is not None:
            cell.execution_count += 1
    text = nbformat.writes(nb)
    models = list(nb.metadata.widgets[STATE]["state"])
    for old in models:
        text = text.replace(old, uuid.uuid4().hex)
    assert images and models, "nothing to perturb: the test would prove nothing"
    return nbformat.reads(text, as_version=4)


@pytest.mark.slow
def test_release_keeps_a_notebook_executed_elsewhere_byte_for_byte(tmp_path, monkeypatch, capsys):
    course = copy_course(ROOT, tmp_path / "course")
    (course / SANITIZE_FILE).parent.mkdir()
    shutil.copy2(ROOT / SANITIZE_FILE, course / SANITIZE_FILE)
    for kind in ("release", "notebooks"):
        shutil.copytree(ROOT / kind / ASSIGNMENT, course / kind / ASSIGNMENT)
    tracked = course / "notebooks" / ASSIGNMENT / NAME
    nbformat.write(as_another_machine_wrote_it(nbformat.read(tracked, as_version=4)), tracked)
    committed = {path: path.read_bytes() for path in (tracked, course / "release" / ASSIGNMENT / NAME)}
    assert committed[tracked] != (ROOT / "notebooks" / ASSIGNMENT / NAME).read_bytes()
    # The kernel imports the course library of this checkout.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))

    assert main(["--root", str(course), "release", ASSIGNMENT]) == 0

    out = capsys.readouterr().out
    for path, before in committed.items():
        rel = path.relative_to(course).as_posix()
        assert f"kept      {rel}" in out, out
        assert path.read_bytes() == before, f"{rel} was rewritten:\n{out}"
