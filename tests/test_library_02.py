"""Library additions for notebook 02 (masking): each must tell a right answer from a wrong one."""
import math

import torch

from transformer_debug import probes


def masked_mean(x, real):  # (B, T, C): running mean over the real inputs at or before each position
    w = real.unsqueeze(-1).to(x)
    return (x * w).cumsum(1) / w.cumsum(1).clamp_min(1)


def test_padding_leak_is_zero_when_pads_are_ignored():
    x, real = torch.randn(3, 6, 4), torch.arange(6) < torch.tensor([[6], [4], [1]])
    leak = probes.padding_leak(masked_mean, x, real)
    assert leak.shape == (6,) and leak.max() == 0


def test_padding_leak_sees_changed_pad_values_and_changed_pad_counts():
    x, real = torch.randn(2, 5, 3), torch.arange(5) < torch.tensor([[3], [2]])
    # Every position reads the whole sequence, pads included: values and count both matter.
    leak = probes.padding_leak(lambda x, real: x.mean(1, keepdim=True).expand_as(x), x, real)
    assert (leak[:3] > 0).all() and (leak[3:] == 0).all()  # positions 3, 4 are never real
    # Reads only how many positions there are: only the appended pads move it.
    count = probes.padding_leak(lambda x, real: x + x.size(1), x, real)
    assert torch.allclose(count[:3], torch.full((3,), 3.0))


def test_padding_leak_counts_nan_at_real_positions_as_infinite_and_ignores_pads_own_outputs():
    x, real = torch.randn(2, 4, 3), torch.arange(4) < torch.tensor([[4], [2]])
    nan_at_pads = probes.padding_leak(lambda x, real: x.masked_fill(~real.unsqueeze(-1), math.nan), x, real)
    assert nan_at_pads.max() == 0
    nan_first = probes.padding_leak(lambda x, real: torch.cat([x[:, :1] * math.nan, x[:, 1:]], 1), x, real)
    assert math.isinf(nan_first[0]) and nan_first[1:].max() == 0


def test_mask_grid_draws_one_panel_per_item_and_row_and_shows_nan():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from transformer_debug import plots
    before = dict(plt.rcParams)
    mask = torch.ones(3, 4, 4, dtype=torch.bool).tril()
    weights = mask / mask.sum(-1, keepdim=True)
    weights[1, 2] = math.nan
    fig = plots.mask_grid({"mask": mask, "weights": weights}, columns=["a", "b", "c"], title="t")
    assert len(fig.axes) == 2 * 3 + 1  # one per item and row, plus the colour bar
    assert fig.axes[4].get_title() == "weights: b"
    image = fig.axes[4].images[0]
    assert tuple(image.to_rgba(math.nan)[:3]) == (1.0, 0.0, 0.0)  # NaN is drawn red
    assert image.get_array().mask[2].all() and not image.get_array().mask[1].any()
    assert dict(plt.rcParams) == before
    plt.close("all")
