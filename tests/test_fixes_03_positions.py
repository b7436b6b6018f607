"""Hidden tests accept any correct fix, not only the author's way of writing it.

Each namespace below fixes the planted bugs of notebook 03 differently from the source
(other torch ops, another way to keep the two parts of the embedding at the same scale).
Every autograded test cell must pass on each of them, and the author's model answer to
"your test" must too.
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import ROOT, answer_cell, points_lost, run_graded_cells
from transformer_debug.authoring.builds import read_source
from transformer_debug.tasks import seeded


def harness():
    """What the locked harness cell defines (the classifier and its training loop)."""
    _, nb = read_source(ROOT, "03_positions")
    [code] = [c.source for c in nb.cells if c.get("id") == "harness"]
    namespace = {"torch": torch, "nn": nn, "F": F, "seeded": seeded}
    exec(code, namespace)
    return {name: namespace[name] for name in ("OrderClassifier", "accuracy", "train")}


def pow_outer_unscaled():
    """Powers in float64, torch.outer, stacked (sin, cos); no sqrt(C) and N(0, 1) token weights."""

    def inverse_frequencies(d_model):
        i = torch.arange(d_model // 2, dtype=torch.float64)
        return (1.0 / torch.pow(10000.0, 2 * i / d_model)).float()

    def sinusoidal_table(seq_len, d_model):
        angle = torch.outer(torch.arange(seq_len, dtype=torch.float32), inverse_frequencies(d_model))
        return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)  # (T, C/2, 2) -> (T, C)

    class Embedding(nn.Module):
        def __init__(self, vocab_size, table):
            super().__init__()
            self.d_model = table.size(1)
            self.tok = nn.Embedding(vocab_size, self.d_model)  # N(0, 1) entries, used as they are
            self.register_buffer("table", table, persistent=False)

        def forward(self, idx):
            return torch.add(self.tok(idx), self.table[: idx.size(1)].unsqueeze(0))

    return {"inverse_frequencies": inverse_frequencies, "sinusoidal_table": sinusoidal_table,
            "Embedding": Embedding}


def einsum_uniform_inplace():
    """A power of 10000, einsum, a filled table; sqrt(C) kept with uniform small weights, in-place add."""

    def inverse_frequencies(d_model):
        return 10000.0 ** (-torch.arange(0, d_model, 2).float() / d_model)

    def sinusoidal_table(seq_len, d_model):
        angle = torch.einsum("t,i->ti", torch.arange(seq_len).float(), inverse_frequencies(d_model))
        table = torch.empty(seq_len, d_model // 2, 2)
        table[..., 0], table[..., 1] = angle.sin(), angle.cos()
        return table.view(seq_len, d_model)

    class Embedding(nn.Module):
        def __init__(self, vocab_size, table):
            super().__init__()
            self.d_model = table.size(1)
            self.tok = nn.Embedding(vocab_size, self.d_model)
            bound = math.sqrt(3 / self.d_model)  # uniform(-b, b) has std b / sqrt(3) = 1 / sqrt(C)
            nn.init.uniform_(self.tok.weight, -bound, bound)
            self.register_buffer("table", table, persistent=False)

        def forward(self, idx):
            x = self.tok(idx) * self.d_model ** 0.5
            x += self.table[: idx.size(1)]
            return x

    return {"inverse_frequencies": inverse_frequencies, "sinusoidal_table": sinusoidal_table,
            "Embedding": Embedding}


@pytest.mark.parametrize("fix", [pow_outer_unscaled, einsum_uniform_inplace], ids=lambda f: f.__name__)
def test_03_hidden_tests_pass_on_other_correct_fixes(fix, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "03_positions")  # grading finds source/ from here
    run_graded_cells("03_positions", {**harness(), **fix()}, your_test="test_positions")


def test_03_a_plausible_wrong_fix_loses_points():
    """Speeds 10000^(-i/C), i instead of 2i: they start at 1 and fall, as the visible test asks,
    but only to 1/100; the hidden formula tests must take points off."""
    namespace = {}
    exec(answer_cell("03_positions", "positions-code"), namespace)

    def inverse_frequencies(d_model):
        return 10000.0 ** (-torch.arange(d_model // 2, dtype=torch.float32) / d_model)

    namespace["inverse_frequencies"] = inverse_frequencies  # sinusoidal_table looks it up here
    fix = {name: namespace[name] for name in ("inverse_frequencies", "sinusoidal_table", "Embedding")}
    assert points_lost("03_positions", {**harness(), **fix}) == {"hidden-frequencies": 1, "hidden-table": 2}


def test_03_the_table_probe_shows_the_shape_coincidence():
    """At T == C/2 the planted elementwise product does not crash: every row is the same vector,
    which the table probe's first line reports (and the hidden table test rejects by value)."""
    namespace = {}
    exec(answer_cell("03_positions", "positions-code", bugs={"positions-outer-product"}), namespace)
    square = namespace["sinusoidal_table"](16, 32)
    assert len(torch.unique(square, dim=0)) == 1
    with pytest.raises(RuntimeError, match="must match"):
        namespace["sinusoidal_table"](17, 32)
