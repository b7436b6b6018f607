"""The `course` command: mutants for authors, clear errors for bad input."""
import nbformat

from conftest import ROOT
from transformer_debug.authoring.cli import main


def test_build_writes_a_single_bug_mutant(tmp_path, capsys):
    out = tmp_path / "mutant.ipynb"
    assert main(["--root", str(ROOT), "build", "01_attention", "--bug", "attention-head-split",
                 "-o", str(out)]) == 0
    code = "\n".join(c.source for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code")
    assert "return x.view(B, self.n_heads, T, self.d_head)" in code      # the planted bug
    assert "return y.transpose(1, 2).reshape(B, T, H * D)" in code       # every other fix
    assert "### BEGIN" not in code and "### END" not in code


def test_an_unknown_bug_id_is_a_clear_error(tmp_path, capsys):
    assert main(["--root", str(ROOT), "build", "01_attention", "--bug", "attention-typo",
                 "-o", str(tmp_path / "x.ipynb")]) == 2
    err = capsys.readouterr().err
    assert "unknown bug id 'attention-typo'" in err and "attention-head-split" in err
    assert not (tmp_path / "x.ipynb").exists()


def test_an_unknown_assignment_is_a_clear_error(capsys):
    assert main(["--root", str(ROOT), "bugs", "99_nothing"]) == 2
    assert "unknown assignment(s) ['99_nothing']" in capsys.readouterr().err


def test_check_passes_on_the_course(capsys):
    assert main(["--root", str(ROOT), "check"]) == 0
    assert "catalog ok" in capsys.readouterr().out
