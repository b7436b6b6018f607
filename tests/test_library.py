"""Probes and grading helpers: each must be able to tell a right answer from a wrong one."""
import math
import time

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT
from transformer_debug import probes, setup
from transformer_debug.grading import TimeLimitExceeded, assert_close, grade_student_test, implementations, time_limit


def causal_mean(x):  # (B, T, C): running mean over the past, a causal function
    return x.cumsum(1) / torch.arange(1, x.size(1) + 1).view(1, -1, 1)


def test_setup_pins_threads_and_seeds():
    setup(seed=3)
    a = torch.rand(3)
    setup(seed=3)
    assert torch.equal(a, torch.rand(3)) and torch.get_num_threads() == 1


def test_causality_leak_is_zero_for_causal_and_positive_for_leaky_functions():
    x = torch.randn(2, 6, 4)
    assert probes.causality_leak(causal_mean, x).max() == 0
    leak = probes.causality_leak(lambda x: x.flip(1), x)  # position t reads T-1-t
    assert (leak[:3] > 0).all()
    tokens = torch.randint(10, (2, 6))
    assert probes.causality_leak(lambda t: t.cumsum(1).float(), tokens, vocab_size=10).max() == 0


def test_attention_entropy_and_row_sums():
    T = 5
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1).view(-1, 1)
    assert torch.allclose(probes.attention_entropy(uniform), torch.log(torch.arange(1, T + 1).float()))
    assert torch.allclose(probes.row_sums(uniform), torch.ones(T))
    assert probes.attention_entropy(torch.eye(T)).abs().max() < 1e-6


def test_lagged_heads_layouts_agree_and_attention_maps_match_torch():
    q, k, q_heads, k_heads = probes.lagged_heads(n_heads=2, d_head=8, seq_len=6)
    for h in range(2):
        assert torch.equal(q[0, :, h * 8:(h + 1) * 8], q_heads[0, h])
    D = 8

    def split(x):
        return x.view(1, 6, 2, D).transpose(1, 2)

    def scores(a, b):
        return a @ b.transpose(-2, -1) / math.sqrt(D)

    def weights(s):
        return torch.softmax(s.masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), float("-inf")), -1)

    maps = probes.attention_maps(split, scores, weights, n_heads=2, d_head=8, seq_len=6)
    assert torch.allclose(maps["yours"], maps["torch"], atol=1e-6)
    # Head h of token t looks back h + 1 tokens.
    assert maps["torch"][1, 5].argmax() == 3
    unscaled = probes.attention_maps(split, lambda a, b: a @ b.transpose(-2, -1), weights,
                                     n_heads=2, d_head=8, seq_len=6)
    assert not torch.allclose(unscaled["yours"], unscaled["torch"], atol=1e-3)


def test_time_limit_stops_a_runaway_loop_quickly():
    start = time.perf_counter()
    with pytest.raises(TimeLimitExceeded, match="longer than 1 s"):
        with time_limit(1, "the loop"):
            while True:
                pass
    assert time.perf_counter() - start < 3


def test_assert_close_messages():
    with pytest.raises(AssertionError, match="shape"):
        assert_close(torch.zeros(2), torch.zeros(3), "x")
    with pytest.raises(AssertionError, match="NaN"):
        assert_close(torch.tensor([float("nan")]), torch.zeros(1), "x")
    with pytest.raises(AssertionError, match="differs .* by up to 1"):
        assert_close(torch.ones(1), torch.zeros(1), "x")
    assert_close(torch.ones(1), torch.ones(1), "x")


@pytest.fixture
def in_course(monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "01_attention")


def test_implementations_come_from_source_fixed_and_with_each_bug(in_course):
    variants = implementations("01_attention", "attention-code")
    assert set(variants) == {None, "attention-head-split", "attention-merge-heads",
                             "attention-missing-scale", "attention-softmax-dim"}
    torch.manual_seed(0)
    fixed = variants[None].MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    assert fixed(x).shape == (1, 3, 8)
    with pytest.raises(RuntimeError):
        variants["attention-merge-heads"].MultiHeadAttention(8, 2)(x)



def test_an_answer_cell_may_define_a_dataclass(course, monkeypatch):
    """The grader's own `from __future__ import annotations` must not reach the answer cell."""
    from conftest import edit_cell
    from transformer_debug.authoring.catalog import source_notebook
    edit_cell(source_notebook(course, "01_attention"), "attention-code",
              lambda src: src + "\n\nfrom dataclasses import dataclass\n\n\n@dataclass\nclass Config:\n    d_model: int = 8\n")
    monkeypatch.chdir(course / "source" / "01_attention")
    variants = implementations("01_attention", "attention-code")
    assert variants[None].Config().d_model == 8

def good_test(impl):
    torch.manual_seed(0)
    attention = impl.MultiHeadAttention(8, 2)
    x = torch.randn(2, 5, 8)
    heads = lambda t: t.view(2, 5, 2, 4).transpose(1, 2)  # noqa: E731
    y = F.scaled_dot_product_attention(heads(attention.query(x)), heads(attention.key(x)),
                                       heads(attention.value(x)), is_causal=True)
    assert torch.allclose(attention(x), attention.out(y.transpose(1, 2).reshape(2, 5, 8)), atol=1e-5)


def shape_only_test(impl):
    assert impl.MultiHeadAttention(8, 2)(torch.randn(2, 5, 8)).shape == (2, 5, 8)


def test_grade_student_test_accepts_a_test_that_catches_every_bug(in_course):
    grade_student_test(good_test, "01_attention", "attention-code")


def test_grade_student_test_rejects_a_weak_test_and_names_the_missed_symptoms(in_course):
    with pytest.raises(AssertionError, match="passes on 3 of the 4 buggy versions") as err:
        grade_student_test(shape_only_test, "01_attention", "attention-code")
    assert "below the entropy floor" in str(err.value)


def test_grade_student_test_rejects_a_test_that_fails_on_correct_code(in_course):
    def always_fails(impl):
        raise AssertionError("nope")
    with pytest.raises(AssertionError, match="fails on a correct implementation"):
        grade_student_test(always_fails, "01_attention", "attention-code")

    def unfinished(impl):
        assert impl.MultiHeadAttention(8, 2)(torch.randn(2, 5, 8)).shape == (2, 5, 8)
        raise NotImplementedError("todo: compare with torch")
    with pytest.raises(AssertionError, match="fails on a correct implementation"):
        grade_student_test(unfinished, "01_attention", "attention-code")


def test_grade_student_test_says_when_the_test_is_not_written_yet(in_course):
    def test_attention(impl):
        """Passes on a correct MultiHeadAttention, fails on each planted bug."""
        # YOUR CODE HERE
        raise NotImplementedError()
    with pytest.raises(AssertionError) as err:
        grade_student_test(test_attention, "01_attention", "attention-code")
    assert "not written yet" in str(err.value) and "test_attention still raises NotImplementedError" in str(err.value)
    assert "fails on a correct implementation" not in str(err.value)


RELEASED = '''def test_attention(impl):
    """Passes on a correct MultiHeadAttention, fails on each planted bug."""
    # YOUR CODE HERE
    raise NotImplementedError()'''


@pytest.mark.parametrize("source, expected", [
    (RELEASED, True),
    (RELEASED.replace("NotImplementedError()", "NotImplementedError"), True),
    (RELEASED.replace("NotImplementedError()", "NotImplementedError('later')"), True),
    ("def test_attention(impl):\n    raise NotImplementedError\n", True),
    (RELEASED.replace("    # YOUR CODE HERE\n", "    assert impl.MultiHeadAttention\n"), False),
    (RELEASED.replace("NotImplementedError()", "ValueError()"), False),
    (RELEASED.replace("raise NotImplementedError()", "pass"), False),
    (RELEASED.replace("test_attention", "test_other"), False),   # not the function graded
    (RELEASED + "\n\ndef test_attention(impl):\n    assert impl\n", False),  # redefined: the last one runs
    ("def test_attention(impl) oops", False),                     # a syntax error fails as written
])
def test_unwritten_reads_the_stub_from_the_code(source, expected):
    from transformer_debug.grading import unwritten
    assert unwritten(source, "test_attention") is expected


def test_the_grader_says_when_the_test_is_not_written_yet(monkeypatch):
    """The grader's path (judge.py) decides from the submitted your-test cell, without running it
    (no sandbox is started here: running it would need one)."""
    import nbformat

    from transformer_debug import grading
    from transformer_debug.authoring.judge import JudgeSession
    from transformer_debug.sandbox import Limits
    cell = nbformat.v4.new_code_cell(RELEASED, metadata={"nbgrader": {"grade_id": "your-test"}})
    session = JudgeSession(ROOT, None, nbformat.v4.new_notebook(cells=[cell]), sealed=False, limits=Limits())
    monkeypatch.setattr(grading, "_judge", session)
    with pytest.raises(AssertionError, match="your test is not written yet: test_attention still raises"):
        grade_student_test("test_attention", "01_attention", "attention-code")


def test_plots_draw_on_their_own_figures_and_leave_global_settings_alone():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from transformer_debug import plots
    before = dict(plt.rcParams)
    maps = {"yours": torch.rand(3, 5, 5), "torch": torch.rand(3, 5, 5)}
    fig = plots.attention_maps(maps, title="t")
    assert len(fig.axes) == 2 * 3 + 1  # one per head and row, plus the colour bar
    fig = plots.loss_curves({"a": [3.0, 2.0]}, floor=1.0, ceiling=3.4)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][0] == "a"
    _, ax = plt.subplots()
    assert plots.leak_bars(torch.tensor([0.0, 0.5]), ax=ax) is ax.figure
    assert [p.get_height() for p in ax.patches] == [0.0, 0.5]
    assert dict(plt.rcParams) == before
    plt.close("all")

