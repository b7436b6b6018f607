"""The reproducibility probes and the batch grid of notebook 09."""
import math

import torch
import torch.nn as nn

from transformer_debug import plots, probes


def test_first_difference_is_exact_and_says_where_two_runs_part():
    a = [3.0, 2.5, 2.25, 2.0]
    assert probes.first_difference(a, list(a)) is None
    assert probes.first_difference(a, [3.0, 2.5, 2.25 + 1e-12, 2.0]) == 2  # no tolerance: any bit counts
    assert probes.first_difference(a, [4.0, *a[1:]]) == 0
    assert probes.first_difference(a, a[:2]) == 2  # one run stopped early
    assert probes.first_difference([1.0, math.nan], [1.0, math.nan]) is None  # NaN equals NaN here
    assert probes.first_difference([1.0, math.nan], [1.0, 2.0]) == 1
    assert probes.first_difference([], []) is None


def test_state_differences_are_zero_for_equal_weights_and_name_what_differs():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)).state_dict()
    b = {k: v.clone() for k, v in a.items()}
    assert probes.state_differences(a, b) == {k: 0.0 for k in a}
    b["0.bias"] = b["0.bias"] + torch.tensor([0.0, 0.5, -2.0, 0.0])
    diffs = probes.state_differences(a, b)
    assert abs(diffs["0.bias"] - 2.0) < 1e-6 and sum(d > 0 for d in diffs.values()) == 1
    assert probes.state_differences(a, {**b, "extra": torch.zeros(1)})["extra"] == math.inf
    del b["1.weight"]
    assert probes.state_differences(a, b)["1.weight"] == math.inf
    assert probes.state_differences({"w": torch.zeros(2, 3)}, {"w": torch.zeros(3, 2)}) == {"w": math.inf}
    assert probes.state_differences({"mask": torch.ones(2, dtype=torch.bool)},
                                    {"mask": torch.tensor([True, False])}) == {"mask": 1.0}


def test_describe_state_counts_tensors_numbers_and_other_values():
    assert probes.describe_state(torch.zeros(5056, dtype=torch.uint8)) == "uint8 tensor (5056,)"
    model = nn.Linear(3, 2)
    assert probes.describe_state(model.state_dict()) == "2 tensors (8 numbers)"
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    summary = probes.describe_state(opt.state_dict())
    assert "tensor" not in summary and summary.endswith("other values")  # plain SGD keeps no tensors
    assert probes.describe_state({"step": 3, "nested": [torch.ones(2, 2), (torch.ones(1), "x")]}) == \
        "2 tensors (5 numbers), 2 other values"
    assert probes.describe_state({}) == "nothing"
    assert probes.describe_state({"a": 1}) == "1 other value"


def test_batch_grid_draws_one_image_per_batch_and_leaves_global_settings_alone():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = dict(plt.rcParams)
    masks = torch.rand(2, 4, 8, 16) < 0.3  # (epochs, batches, B, T)
    fig = plots.batch_grid({"epoch 1": masks[0], "epoch 2": masks[1]},
                           columns=[f"batch {b}" for b in range(4)], title="noise")
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 8
    assert images[0].get_title() == "epoch 1: batch 0" and images[-1].get_title() == "epoch 2: batch 3"
    assert (images[5].images[0].get_array() == masks[1, 1].float().numpy()).all()
    assert dict(plt.rcParams) == before
    plt.close(fig)
