"""Hidden tests accept any correct fix, not only the author's way of writing it.

Each fix below starts from the code students receive (all four bugs planted) and repairs it
differently from the source notebook: another way to set the default layout, other torch ops
and orders of operations in the blocks, a functional final LayerNorm. Every hidden test cell
must pass on each of them, and the author's model answer to "your test" must too.
"""
from collections import namedtuple

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, answer_cell, points_lost, run_graded_cells

BUGS = {"blocks-post-ln", "blocks-residual-normed", "blocks-dropout-stream", "blocks-final-ln"}


def released():
    """The answer cell as students get it: every bug in place."""
    namespace = {}
    exec(answer_cell("04_blocks", "blocks-code", bugs=BUGS), namespace)
    return namespace


def loop_and_functional_norm():
    ns = released()
    fields = ns["Config"]._field_defaults
    assert list(fields)[-1] == "norm_first"
    Config = namedtuple("Config", list(fields), defaults=[*fields.values()][:-1] + [True])

    class Block(ns["Block"]):
        def forward(self, x):
            if not self.norm_first:
                return super().forward(x)
            for norm, branch in ((self.ln1, self.attn), (self.ln2, self.mlp)):
                x = torch.add(x, self.drop(branch(norm(x))))
            return x

    class TinyLM(ns["TinyLM"]):
        def forward(self, idx):
            x = self.tok(idx) + self.pos.weight[: idx.size(1)]
            for block in self.blocks:
                x = block(x)
            x = F.layer_norm(x, x.shape[-1:], self.ln_f.weight, self.ln_f.bias, self.ln_f.eps)
            return x @ self.head.weight.T + self.head.bias

    ns["Block"] = Block  # TinyLM builds its blocks from this name
    return {"Config": Config, "CausalSelfAttention": ns["CausalSelfAttention"], "MLP": ns["MLP"],
            "Block": Block, "TinyLM": TinyLM}


def functional_dropout_plain_config():
    ns = released()

    class Config:
        def __init__(self, vocab_size=32, seq_len=16, d_model=32, n_heads=4, n_layers=3, dropout=0.1,
                     norm_first=True):
            self.vocab_size, self.seq_len, self.d_model = vocab_size, seq_len, d_model
            self.n_heads, self.n_layers, self.dropout, self.norm_first = n_heads, n_layers, dropout, norm_first

    class Block(ns["Block"]):
        def forward(self, x):
            if not self.norm_first:
                return super().forward(x)
            a = F.dropout(self.attn(self.ln1(x)), self.drop.p, self.training)
            x = a + x
            m = self.mlp(self.ln2(x))
            return x + F.dropout(m, p=self.drop.p, training=self.training)

    class TinyLM(ns["TinyLM"]):
        def forward(self, idx):
            x = self.tok(idx) + self.pos(torch.arange(idx.size(1), device=idx.device))
            for block in self.blocks:
                x = block(x)
            x = self.ln_f(x)
            return self.head(x)

    ns["Block"] = Block
    return {"Config": Config, "CausalSelfAttention": ns["CausalSelfAttention"], "MLP": ns["MLP"],
            "Block": Block, "TinyLM": TinyLM}


@pytest.mark.parametrize("make", [loop_and_functional_norm, functional_dropout_plain_config],
                         ids=lambda f: f.__name__)
def test_04_hidden_tests_pass_on_other_correct_fixes(make, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "04_blocks")  # grading finds source/ from here
    run_graded_cells("04_blocks", make(), your_test="test_blocks")


def test_04_the_released_code_fails_the_graded_cells():
    """The runner can fail: the untouched release does not pass as a 'fix'."""
    ns = released()
    names = {k: ns[k] for k in ("Config", "CausalSelfAttention", "MLP", "Block", "TinyLM")}
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        run_graded_cells("04_blocks", names, your_test="test_blocks")


def fixed_with(**replacements):
    """The author's fixed cell with some classes replaced; TinyLM builds blocks from this namespace."""
    namespace = {}
    exec(answer_cell("04_blocks", "blocks-code"), namespace)
    namespace.update(replacements)
    return namespace


@pytest.mark.parametrize("wrong, lost", [
    # LayerNorm on each branch's output instead of its input: it looks right, and a switched-off block
    # is still the identity (LayerNorm of zeros is its bias, 0 at initialisation); the same visible
    # test's constant attention branch (normalised to zero) and the comparison with torch catch it.
    ("branch_output_norm", {"visible-switched-off": 1, "hidden-pre-ln-vs-torch": 2}),
    # The final LayerNorm applied to the logits: with V == C it runs and normalises something, and
    # every visible test passes; the readout test uses V != C.
    ("norm_on_logits", {"hidden-readout-normalised": 1}),
])
def test_04_plausible_wrong_fixes_lose_points(wrong, lost):
    base = fixed_with()

    class BranchOutputNorm(base["Block"]):
        def forward(self, x):
            if not self.norm_first:
                return super().forward(x)
            x = x + self.ln1(self.drop(self.attn(x)))
            return x + self.ln2(self.drop(self.mlp(x)))

    class NormOnLogits(base["TinyLM"]):
        def forward(self, idx):
            x = self.tok(idx) + self.pos(torch.arange(idx.size(1), device=idx.device))
            for block in self.blocks:
                x = block(x)
            return self.ln_f(self.head(x))

    ns = fixed_with(Block=BranchOutputNorm) if wrong == "branch_output_norm" else fixed_with(TinyLM=NormOnLogits)
    names = {k: ns[k] for k in ("Config", "CausalSelfAttention", "MLP", "Block", "TinyLM")}
    assert points_lost("04_blocks", names) == lost
