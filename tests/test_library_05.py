"""The float16 softmax probe and its plot: they must tell a stable softmax from a naive one."""
import math

import torch

from transformer_debug import probes


def naive_softmax(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim, keepdim=True)


def test_softmax_overflow_is_small_for_torch_and_breaks_a_naive_float16_softmax_past_ln_65504():
    magnitudes = [0, 5, 10, 11, 12, 20, 40]
    stable = probes.softmax_overflow(torch.softmax, magnitudes)
    assert stable.shape == (7,) and stable.dtype == torch.float64
    assert (stable < 2e-3).all()  # float16 rounding only
    naive = probes.softmax_overflow(naive_softmax, magnitudes).tolist()
    assert max(naive[:3]) < 2e-3  # below 11.09 every exp fits
    assert 0.1 < naive[3] < math.inf  # at 11 each exp fits but their sum does not: weights 0
    assert all(math.isinf(e) for e in naive[4:])  # exp(12) = inf, inf / inf = NaN: reported as inf
    # In float32 the naive softmax survives the same logits.
    assert (probes.softmax_overflow(naive_softmax, magnitudes, dtype=torch.float32) < 1e-6).all()


def test_softmax_overflow_is_deterministic_and_uses_the_exact_magnitude():
    seen = []

    def spy(x, dim=-1):
        seen.append(x.abs().max().item())
        return torch.softmax(x, dim)

    a = probes.softmax_overflow(spy, [3.0, 7.0], dtype=torch.float32)
    assert seen == [3.0, 7.0]
    assert torch.equal(a, probes.softmax_overflow(torch.softmax, [3.0, 7.0], dtype=torch.float32))


def test_overflow_sweep_marks_broken_outputs_and_leaves_global_settings_alone():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from transformer_debug import plots
    before = dict(plt.rcParams)
    errors = {"naive": torch.tensor([1e-4, 0.5, math.inf]), "torch": torch.tensor([0.0, 1e-4, 1e-4])}
    fig = plots.overflow_sweep([0, 10, 20], errors, limit=11.09)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["naive", "naive: NaN or inf", "torch", "exp overflows past 11.09"]
    crosses = [line for line in ax.lines if line.get_label() == "naive: NaN or inf"][0]
    assert list(crosses.get_xdata()) == [20.0]
    assert ax.get_yscale() == "log"
    _, other = plt.subplots()
    assert plots.overflow_sweep([0], {"a": torch.tensor([1e-3])}, ax=other) is other.figure
    assert dict(plt.rcParams) == before
    plt.close("all")


def test_logit_magnitudes_cover_the_dtype_range_and_catch_a_softmax_that_only_upcasts():
    sizes = probes.logit_magnitudes(torch.float16)
    assert sizes[:25] == [float(m) for m in range(25)]
    assert sizes[-1] == 65504.0 and sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert max(b / a for a, b in zip(sizes[25:], sizes[26:])) < 1.2  # four sizes per doubling
    assert probes.logit_magnitudes(torch.bfloat16)[-1] == torch.finfo(torch.bfloat16).max

    def upcast_only(x, dim=-1):  # float32 exp without the shift: fine to |logit| 88, NaN past it
        e = x.float().exp()
        return (e / e.sum(dim, keepdim=True)).to(x.dtype)

    errors = probes.softmax_overflow(upcast_only, sizes).tolist()
    broken = [m for m, e in zip(sizes, errors) if e > 1e-2]
    assert broken and 88 < broken[0] < 100 and all(math.isinf(e) for e in errors[sizes.index(broken[0]):])
    assert max(probes.softmax_overflow(upcast_only, list(range(25)))) < 2e-3  # the old sweep missed it
    assert max(probes.softmax_overflow(torch.softmax, sizes)) < 2e-3


def test_overflow_sweep_can_use_a_log_axis_for_a_whole_range():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from transformer_debug import plots
    fig = plots.overflow_sweep([0, 10, 65504], {"a": torch.tensor([1e-4, 1e-4, math.inf])}, log_x=True)
    assert fig.axes[0].get_xscale() == "symlog"
    plt.close("all")
