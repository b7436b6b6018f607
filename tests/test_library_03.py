"""Library additions for notebook 03: the order probe and the position-table figures."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from transformer_debug import plots, probes  # noqa: E402


def bag_of_tokens(idx):  # (B, T) -> (B, 3): token counts, blind to order
    return torch.stack([(idx == v).sum(1) for v in range(3)], dim=1).float()


def first_token(idx):  # (B, T) -> (B,): depends on order
    return idx[:, 0].float()


def test_order_sensitivity_is_zero_for_a_bag_of_tokens_and_positive_when_order_matters():
    idx = torch.tensor([[0, 1, 2, 2, 1, 0], [2, 2, 0, 1, 1, 0]])
    assert probes.order_sensitivity(bag_of_tokens, idx).max() == 0
    changes = probes.order_sensitivity(first_token, idx, n_shuffles=16, seed=1)
    assert changes.shape == (16,) and changes.max() > 0


def test_order_sensitivity_is_reproducible_and_leaves_its_input_alone():
    idx = torch.randint(5, (4, 9), generator=torch.Generator().manual_seed(0))
    copy = idx.clone()
    a = probes.order_sensitivity(first_token, idx, seed=3)
    assert torch.equal(a, probes.order_sensitivity(first_token, idx, seed=3))
    assert torch.equal(idx, copy)


def test_position_plots_draw_on_their_own_figures_and_leave_global_settings_alone():
    before = dict(plt.rcParams)
    t = torch.arange(10.0)[:, None]
    table = torch.cat([torch.sin(t), torch.cos(t)], dim=1)  # (10, 2), one clock hand
    fig = plots.encoding_table(table, title="t")
    assert len(fig.axes) == 4  # the table, the similarity map, two colour bars
    similarity = fig.axes[1].images[0].get_array()
    assert abs(similarity[3, 3] - 1) < 1e-9 and abs(similarity[0, 5] - torch.cos(torch.tensor(5.0)).item()) < 1e-6
    fig = plots.accuracy_curves({"a": [0.5, 0.9]}, chance=0.5, best=1.0)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "chance 50%", "best possible 100%"]
    _, ax = plt.subplots()
    assert plots.order_bars(torch.tensor([0.0, 0.5]), ax=ax) is ax.figure
    heights = [p.get_height() for p in ax.patches]
    assert heights[1] == 0.5 and 0 < heights[0] < 1e-4  # a zero change is drawn at the log scale's floor
    assert [p.get_facecolor() for p in ax.patches][0] != [p.get_facecolor() for p in ax.patches][1]
    assert dict(plt.rcParams) == before
    plt.close("all")
