"""Library additions for notebook 10: counting the positions fed through a model, and their plot."""
import matplotlib
import pytest
import torch
import torch.nn as nn

from transformer_debug import plots, probes

matplotlib.use("Agg")


class _Echo(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(5, 3)

    def forward(self, idx, cache=None):
        return self.tok(idx)


def test_count_positions_records_the_last_axis_of_every_call_and_removes_its_hook():
    model = _Echo()
    with probes.count_positions(model) as count:
        model(torch.zeros(2, 4, dtype=torch.long))
        model(torch.zeros(2, 1, dtype=torch.long), cache=None)
        model(idx=torch.zeros(3, 7, dtype=torch.long))  # keyword input
    assert count.per_call == [4, 1, 7] and count.total == 12 and count.calls == 3
    assert "total=12" in repr(count)
    model(torch.zeros(1, 5, dtype=torch.long))  # after the block: not counted
    assert count.per_call == [4, 1, 7]
    assert not model._forward_pre_hooks


def test_count_positions_removes_its_hook_when_the_body_raises():
    model = _Echo()
    with pytest.raises(ValueError):
        with probes.count_positions(model):
            raise ValueError("boom")
    assert not model._forward_pre_hooks


def test_count_positions_refuses_a_model_without_a_tensor_input():
    model = nn.Identity()
    with pytest.raises(TypeError, match="token ids"):
        with probes.count_positions(model):
            model("not a tensor")


def test_positions_per_token_draws_one_line_per_run_with_its_total():
    fig = plots.positions_per_token({"with": [1] * 4, "without": [1, 2, 3, 4]})
    ax = fig.axes[0]
    assert [line.get_ydata().tolist() for line in ax.lines] == [[1, 1, 1, 1], [1, 2, 3, 4]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["with: 4 in all", "without: 10 in all"]
