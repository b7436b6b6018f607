"""Hidden tests accept any correct fix, not only the author's way of writing it.

Each class below fixes the planted bugs differently from the source notebook (other torch
ops, other orders of operations). Every hidden test cell must pass on each of them, and the
author's model answer to "your test" must too.
"""
import pytest
import torch
import torch.nn.functional as F

import math

from conftest import ROOT, answer_cell, points_lost, run_graded_cells


def attention_01():
    namespace = {}
    exec(answer_cell("01_attention", "attention-code"), namespace)
    base = namespace["MultiHeadAttention"]

    class UnflattenEinsumCat(base):
        def split_heads(self, x):
            return x.unflatten(-1, (self.n_heads, self.d_head)).permute(0, 2, 1, 3)

        def scores(self, q, k):  # scale the queries first
            return torch.einsum("bhtd,bhsd->bhts", q * self.d_head ** -0.5, k)

        def weights(self, scores):
            T = scores.size(-1)
            future = torch.ones(T, T, dtype=torch.bool, device=scores.device).triu(1)
            return F.softmax(scores.masked_fill(future, float("-inf")), dim=3)

        def merge_heads(self, y):
            return torch.cat(y.unbind(1), dim=-1)

    class ReshapeContiguous(base):
        def split_heads(self, x):
            B, T, C = x.shape
            return x.reshape(B, T, self.n_heads, -1).transpose(1, 2).contiguous()

        def merge_heads(self, y):
            B, H, T, D = y.shape
            return y.transpose(1, 2).contiguous().view(B, T, H * D)

    return [UnflattenEinsumCat, ReshapeContiguous]


@pytest.mark.parametrize("cls", attention_01(), ids=lambda c: c.__name__)
def test_01_hidden_tests_pass_on_other_correct_fixes(cls, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "01_attention")  # grading finds source/ from here
    run_graded_cells("01_attention", {"MultiHeadAttention": cls}, your_test="test_attention")


def test_01_a_plausible_wrong_fix_loses_points():
    """Scaling by sqrt(C) instead of sqrt(D) passes every visible test (they use one head, where
    C == D) and looks right; the hidden tests with three heads must take points off."""
    base = {}
    exec(answer_cell("01_attention", "attention-code"), base)

    class ScaleByWidth(base["MultiHeadAttention"]):
        def scores(self, q, k):
            return q @ k.transpose(-2, -1) / math.sqrt(self.n_heads * self.d_head)

    lost = points_lost("01_attention", {"MultiHeadAttention": ScaleByWidth})
    assert lost == {"hidden-scores": 2, "hidden-vs-torch": 2}
