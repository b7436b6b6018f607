"""Library additions for notebook 07: variable-length batches, their exact loss floor, the
optimizer-step probe and the learning-rate plot."""
import copy
import math

import matplotlib
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from transformer_debug import plots, probes
from transformer_debug.tasks import MarkovLanguage, seeded, target_nll, variable_length

matplotlib.use("Agg")


def test_variable_length_pads_on_the_right_and_keeps_the_shifted_pairs():
    seq = torch.arange(40).view(4, 10) + 100
    inputs, targets = variable_length(seq, seeded(0), min_targets=3, pad_id=7, ignore_index=-1)
    assert inputs.shape == targets.shape == (4, 9)
    lengths = (targets != -1).sum(1)
    assert ((lengths >= 3) & (lengths <= 9)).all() and len(set(lengths.tolist())) > 1
    for row, k in enumerate(lengths.tolist()):
        assert inputs[row, :k].tolist() == seq[row, :k].tolist()
        assert targets[row, :k].tolist() == seq[row, 1:k + 1].tolist()
        assert (inputs[row, k:] == 7).all() and (targets[row, k:] == -1).all()
    again = variable_length(seq, seeded(0), min_targets=3, pad_id=7, ignore_index=-1)
    assert torch.equal(again[0], inputs) and torch.equal(again[1], targets)
    with pytest.raises(AssertionError):
        variable_length(seq, seeded(0), min_targets=10)


def test_target_nll_equals_the_exact_nll_on_full_rows_and_counts_only_kept_targets():
    task = MarkovLanguage(vocab_size=16, lag=2, seq_len=12, seed=3)
    seq = task.sample(64, seeded(1))
    full_inputs, full_targets = seq[:, :-1], seq[:, 1:]
    assert target_nll(task, full_inputs, full_targets) == pytest.approx(task.nll(seq), abs=1e-12)
    inputs, targets = variable_length(seq, seeded(2), min_targets=2)
    # by hand: unigram for the first target, the lag-2 transition for the others
    total, count = 0.0, 0
    for row in range(seq.size(0)):
        k = int((targets[row] != -100).sum())
        total -= math.log(task.stationary[seq[row, 1]])
        for t in range(2, k + 1):
            total -= math.log(task.transition[seq[row, t - 2], seq[row, t]])
        count += k
    assert target_nll(task, inputs, targets) == pytest.approx(total / count, rel=1e-10)


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.head = nn.Embedding(6, 4), nn.Linear(4, 6)

    def forward(self, idx):
        return self.head(torch.tanh(self.tok(idx)))


def _good_step(model, optimizer, micro_batches):
    optimizer.zero_grad()
    n = sum(int((y != -100).sum()) for _, y in micro_batches)
    for x, y in micro_batches:
        (F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum") / n).backward()
    optimizer.step()


def _mean_of_means(model, optimizer, micro_batches):
    optimizer.zero_grad()
    for x, y in micro_batches:
        (F.cross_entropy(model(x).flatten(0, 1), y.flatten()) / len(micro_batches)).backward()
    optimizer.step()


def _no_zero_grad(model, optimizer, micro_batches):
    n = sum(int((y != -100).sum()) for _, y in micro_batches)
    for x, y in micro_batches:
        (F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum") / n).backward()
    optimizer.step()


def test_step_errors_is_rounding_for_a_correct_step_and_large_for_broken_ones():
    torch.manual_seed(0)
    model = _Tiny().double()
    task = MarkovLanguage(vocab_size=6, lag=1, seq_len=8, seed=0)
    g = seeded(0)
    calls = [[variable_length(task.sample(3, g), g) for _ in range(2)] for _ in range(2)]
    model(calls[0][0][0]).sum().backward()  # stale gradients: the probe must start from fresh ones
    before = copy.deepcopy(model.state_dict())
    assert max(probes.step_errors(_good_step, model, calls)) < 1e-12
    mean_of_means = probes.step_errors(_mean_of_means, model, calls)
    assert min(mean_of_means) > 1e-3  # unequal token counts per micro-batch
    stale = probes.step_errors(_no_zero_grad, model, calls)
    assert stale[0] < 1e-12 and stale[1] > 0.1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is untouched


def test_lr_curves_draws_each_curve_and_mark_and_leaves_global_settings_alone():
    import matplotlib.pyplot as plt
    before = dict(plt.rcParams)
    fig = plots.lr_curves({"planned": [0.1, 0.2, 0.3], "used": [0.1, 0.1, 0.1]}, marks={1: "warmup ends"},
                          highlight="planned")
    ax = fig.axes[0]
    assert [line.get_linewidth() for line in ax.lines[:2]] == [7, plt.rcParams["lines.linewidth"]]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["planned", "used", "warmup ends"]
    assert ax.get_ylabel() == "learning rate"
    _, other = plt.subplots()
    assert plots.lr_curves({"a": [1.0]}, ax=other) is other.figure
    assert dict(plt.rcParams) == before
    plt.close("all")
