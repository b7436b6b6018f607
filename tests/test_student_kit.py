"""The student kit: what students install instead of this repository. It must hold the library
and nothing that knows an answer, and with it alone (no course root anywhere) the released
notebook runs, once a student has fixed it."""
import os
import subprocess
import sys
import zipfile

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT
from transformer_debug.authoring.builds import as_submission, read_source
from transformer_debug.authoring.studentkit import build_kit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(ROOT, tmp_path_factory.mktemp("kit") / "student-kit")


def test_the_kit_is_the_library_alone_with_pinned_requirements(kit):
    [wheel] = kit.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if not n.startswith("transformer_debug-")]
    assert code and all(n.startswith("transformer_debug/") and n.endswith(".py") for n in code), code
    assert not any("authoring" in n for n in names), "the grader's and author's tools stay out of the kit"
    text = "\n".join(zipfile.ZipFile(wheel).read(n).decode() for n in code)
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN BUG"):
        assert f"### {marker}" not in text
    requirements = (kit / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements and f"./{wheel.name}" in requirements
    assert all("==" in line for line in requirements.splitlines()[1:-1]), "every requirement pinned"


def test_a_release_only_install_runs_notebook_01_once_fixed(kit, tmp_path):
    site, work = tmp_path / "site", tmp_path / "work"
    [wheel] = kit.glob("*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(site), str(wheel)], check=True)
    path, source = read_source(ROOT, "01_attention")
    release = nbformat.read(ROOT / "release" / "01_attention" / path.name, as_version=4)
    nb = as_submission(release, source, path, set(), only_bug_cells=False)  # what a student hands in
    nb.cells.append(nbformat.v4.new_code_cell(
        "import sys, transformer_debug\n"
        "print('library:', transformer_debug.__file__)\n"
        "print('loaded:', sorted({m.__file__.rsplit('/transformer_debug/', 1)[0] for n, m in sys.modules.items()\n"
        "                         if n.startswith('transformer_debug') and getattr(m, '__file__', None)}))"))
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(work)}}).execute(env=env)  # no course root on the path
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[:1]
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert f"library: {site}" in last and f"loaded: ['{site}']" in last, last  # nothing from the course root
