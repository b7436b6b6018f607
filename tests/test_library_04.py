"""Library additions for notebook 04: gradient norms, dead parameters, output scales, per-layer plot."""
import math

import matplotlib
import pytest
import torch
import torch.nn as nn

from transformer_debug import plots, probes

matplotlib.use("Agg")


def test_gradient_norms_per_module_and_zero_for_unused_modules():
    used, unused = nn.Linear(3, 2), nn.Linear(3, 2)
    with torch.no_grad():
        used.weight.fill_(1.0), used.bias.zero_()
    used(torch.ones(1, 3)).sum().backward()
    # d/dW of sum(W x + b) with x = 1: every entry 1 (6 of them); d/db: 1 (2 of them)
    assert probes.gradient_norms([used, unused]) == pytest.approx([math.sqrt(8), 0.0])


def test_dead_parameters_names_missing_zero_and_nonfinite_gradients():
    model = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.Linear(2, 2), "c": nn.Linear(2, 2)})
    x = torch.ones(1, 2)
    (model["a"](x).sum() + 0 * model["b"](x).sum()).backward()
    dead = probes.dead_parameters(model)
    assert "a.weight" not in dead and "a.bias" not in dead
    assert dead["b.weight"] == "gradient exactly zero"
    assert dead["c.weight"] == "no gradient"
    model["a"].weight.grad[0, 0] = float("nan")
    assert probes.dead_parameters(model)["a.weight"] == "NaN or inf in the gradient"


def test_output_scales_reads_each_module_and_leaves_no_hooks():
    double, half = nn.Identity(), nn.Identity()
    seq = nn.Sequential(double, half)
    x = torch.randn(1000)
    scales = probes.output_scales([seq[0], seq[1]], lambda t: seq(2 * t), x)
    assert scales == pytest.approx([(2 * x).std().item()] * 2)
    assert not double._forward_hooks and not half._forward_hooks
    assert math.isnan(probes.output_scales([nn.Identity()], lambda: None)[0])  # never ran


def test_per_layer_draws_one_line_per_series_on_a_log_axis():
    fig = plots.per_layer({"a": [1.0, 2.0, 4.0], "b": [1.0, 0.1, 0.01]}, ylabel="norm", title="t")
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    matplotlib.pyplot.close(fig)
    fig = plots.per_layer({"a": [1.0, 2.0], "b": [1.0, 2.0]}, ylabel="norm", log=False, highlight="a")
    band, line = fig.axes[0].lines
    assert band.get_linewidth() > line.get_linewidth() and band.get_alpha() < 1 and fig.axes[0].get_yscale() == "linear"
    matplotlib.pyplot.close(fig)
