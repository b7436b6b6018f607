"""Figures for the probes and for training curves.

Every helper draws on axes it is given (or makes its own figure), returns the figure,
and never touches matplotlib's global settings.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

__all__ = ["attention_maps", "loss_curves", "leak_bars", "overflow_sweep", "encoding_table",
           "accuracy_curves", "order_bars", "mask_grid", "per_layer", "batch_grid",
           "metric_curves", "lr_curves", "positions_per_token"]


def attention_maps(maps: dict[str, torch.Tensor], title: str = "") -> plt.Figure:
    """One row per entry of `maps` (name -> (H, T, T) weights), one column per head."""
    n_heads = next(iter(maps.values())).size(0)
    return mask_grid(maps, [f"head {h}" for h in range(n_heads)], title, label="attention weight")


def loss_curves(curves: dict[str, list[float]], floor: float | None = None,
                ceiling: float | None = None, ax=None, ylabel: str = "loss (nats/token)"):
    """Training curves, with the task's best possible loss (`floor`) and ln V (`ceiling`)."""
    return _curves(curves, ylabel, ax, [
        (floor, "k", "--", f"entropy floor {floor:.3f}" if floor is not None else ""),
        (ceiling, "grey", ":", f"ln V {ceiling:.3f} (guessing)" if ceiling is not None else "")])


def _curves(curves: dict[str, list[float]], ylabel: str, ax, references) -> plt.Figure:
    """One line per entry of `curves` against the step, and horizontal reference lines
    given as (value or None, colour, line style, label)."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        ax.plot(values, label=name)
    for value, color, ls, label in references:
        if value is not None:
            ax.axhline(value, color=color, ls=ls, lw=1, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig


def leak_bars(leak: torch.Tensor, ax=None):
    """The causality probe: how much each position's output depends on later inputs."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 2.5))
    ax.bar(range(len(leak)), leak.tolist(), color=["tab:red" if v > 1e-6 else "tab:green" for v in leak])
    ax.set_xlabel("position t")
    ax.set_ylabel("change from later inputs")
    ax.set_title("causality probe: every bar should be zero")
    return fig


def overflow_sweep(magnitudes, errors: dict[str, torch.Tensor], limit: float | None = None,
                   title: str = "softmax error as the logits grow", ax=None, log_x: bool = False):
    """Error curves from probes.softmax_overflow, one per entry of `errors` (name -> errors).

    Finite errors are drawn on a log scale; NaN or inf outputs (error inf) as red crosses
    along the top edge. `limit` draws a vertical line, e.g. ln(65504) for float16. `log_x`
    puts the logit sizes on a symmetric log axis (linear below 1), for sweeps that span a
    dtype's whole range (probes.logit_magnitudes).
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.2))
    magnitudes = [float(m) for m in magnitudes]
    finite_max = max([e for errs in errors.values() for e in errs.tolist() if e != float("inf")] + [1.0])
    top = 10 * finite_max
    floor = 1e-8  # exact zeros would vanish from a log axis
    for name, errs in errors.items():
        errs = errs.tolist()
        line, = ax.plot([m for m, e in zip(magnitudes, errs) if e != float("inf")],
                        [max(e, floor) for e in errs if e != float("inf")], marker=".", label=name)
        broken = [m for m, e in zip(magnitudes, errs) if e == float("inf")]
        if broken:
            ax.plot(broken, [top] * len(broken), "x", color="tab:red", label=f"{name}: NaN or inf")
    if limit is not None:
        ax.axvline(limit, color="k", ls="--", lw=1, label=f"exp overflows past {limit:.2f}")
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("largest |logit|")
    ax.set_ylabel("max |error| vs exact softmax")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def encoding_table(table: torch.Tensor, title: str = "") -> plt.Figure:
    """A (T, C) position table as a heatmap, beside the similarity of its rows.

    Left: row t is the vector added at position t. Right: cosine similarity of
    every pair of rows; neighbouring positions should look alike, far ones less so.
    """
    table = table.detach().double().cpu()
    unit = table / table.norm(dim=1, keepdim=True).clamp_min(1e-12)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    image = left.imshow(table.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    left.set_xlabel("column (channel)")
    left.set_ylabel("position")
    left.set_title("position vectors, one row per position", fontsize=10)
    fig.colorbar(image, ax=left, shrink=0.8)
    image = right.imshow((unit @ unit.T).numpy(), cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
    right.set_xlabel("position")
    right.set_ylabel("position")
    right.set_title("cosine similarity of two positions", fontsize=10)
    fig.colorbar(image, ax=right, shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def accuracy_curves(curves: dict[str, list[float]], chance: float | None = None,
                    best: float | None = None, ax=None):
    """Accuracy per step, with the task's chance level and best possible accuracy."""
    return _curves(curves, "accuracy", ax, [
        (chance, "grey", ":", f"chance {chance:.0%}" if chance is not None else ""),
        (best, "k", "--", f"best possible {best:.0%}" if best is not None else "")])


def order_bars(changes: torch.Tensor, rounding: float = 1e-4, ax=None):
    """The order probe: how much the output moves when the tokens are shuffled.

    Log scale, so that a change at float rounding level (red, below `rounding`) is told
    apart at a glance from a small but real one (green).
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 2.5))
    values = changes.detach().double().cpu().clamp_min(1e-12)
    ax.bar(range(len(values)), values.tolist(),
           color=["tab:green" if v > rounding else "tab:red" for v in values])
    ax.axhline(rounding, color="grey", ls=":", lw=1, label=f"{rounding:g}: below, only rounding")
    ax.set_yscale("log")
    ax.set_xlabel("shuffle")
    ax.set_ylabel("change of the output")
    ax.set_title("order probe: every bar should be clearly above the line")
    ax.legend(fontsize=8)
    return fig


def _image_grid(rows: dict[str, torch.Tensor], columns: list[str], title: str, label: str, panel: tuple,
                xy: tuple[str, str], **imshow) -> plt.Figure:
    """One row of 0-to-1 images per entry of `rows` (name -> (N, H, W)), one column per item;
    `panel` is one image's (width, height) in inches, `xy` the axis labels of the outer panels."""
    names = list(rows)
    n = rows[names[0]].size(0)
    fig, axes = plt.subplots(len(names), n, figsize=(panel[0] * n, panel[1] * len(names)),
                             squeeze=False, constrained_layout=True)
    for row, name in enumerate(names):
        for i in range(n):
            ax = axes[row, i]
            image = ax.imshow(rows[name][i].detach().float().cpu().numpy(), vmin=0, vmax=1, **imshow)
            ax.set_title(f"{name}: {columns[i]}", fontsize=9)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(xy[1])
            if row == len(names) - 1:
                ax.set_xlabel(xy[0])
    fig.colorbar(image, ax=axes, shrink=0.8, label=label)
    if title:
        fig.suptitle(title)
    return fig


def mask_grid(rows: dict[str, torch.Tensor], columns: list[str] | None = None, title: str = "",
              label: str = "allowed (1) / weight; red: NaN") -> plt.Figure:
    """Masks or attention weights as heatmaps: one row per entry of `rows` (name -> (N, T, T),
    values in [0, 1], bool masks welcome), one column per item (a sequence, a head).

    Query positions run down, key positions across. NaN cells are drawn red, so a query
    whose weights are NaN (a row that may attend to nothing) stands out.
    """
    n = next(iter(rows.values())).size(0)
    return _image_grid(rows, columns or [str(i) for i in range(n)], title, label, panel=(2.3, 2.3),
                       xy=("key position", "query position"),
                       cmap=plt.get_cmap("viridis").with_extremes(bad="red"))


def per_layer(series: dict[str, list[float]], ylabel: str, title: str = "", log: bool = True, ax=None,
              highlight: str | None = None):
    """One line per entry of `series` (name -> one value per layer), layers numbered from 1.

    `highlight` names an entry to draw as a wide translucent band, so that a line it
    coincides with stays visible on top of it.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    for name, values in series.items():
        style = dict(lw=7, alpha=0.35, zorder=1) if name == highlight else dict(marker="o", ms=4, zorder=2)
        ax.plot(range(1, len(values) + 1), values, label=name, **style)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def batch_grid(rows: dict[str, torch.Tensor], columns: list[str] | None = None, title: str = "",
               label: str = "changed (1)") -> plt.Figure:
    """Whole batches as 0/1 images: one row per entry of `rows` (name -> (N, B, T)), one column
    per batch; sequences run down, positions across. Two equal images are easy to spot."""
    n = next(iter(rows.values())).size(0)
    return _image_grid(rows, columns or [f"batch {i}" for i in range(n)], title, label, panel=(2.1, 1.9),
                       xy=("position", "sequence"), cmap="Greys", aspect="auto", interpolation="nearest")


def metric_curves(history: dict[str, list[float]], best: dict[str, float] | None = None,
                  steps: list[int] | None = None, ax=None, title: str = ""):
    """Metrics per evaluation (name -> values, one per entry of `steps`), each with its best
    possible value (name -> value, e.g. the Bayes classifier's) as a dashed line of its colour."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    best = best or {}
    for name, values in history.items():
        x = steps if steps is not None else range(len(values))
        line, = ax.plot(x, values, marker=".", label=name)
        if name in best:
            ax.axhline(best[name], color=line.get_color(), ls="--", lw=1, label=f"best {name} {best[name]:.3f}")
    ax.set_xlabel("training step" if steps is not None else "evaluation")
    ax.set_ylabel("metric on the validation set")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    return fig


def lr_curves(curves: dict[str, list[float]], marks: dict[float, str] | None = None, ax=None,
              ylabel: str = "learning rate", highlight: str | None = None):
    """Learning rate per optimizer step, one line per entry of `curves` (name -> values);
    `marks` draws a dotted vertical line at each step (step -> label), e.g. where warmup ends.
    `highlight` names an entry to draw as a wide translucent band, so a curve that coincides
    with it stays visible on top of it."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        style = dict(lw=7, alpha=0.35, zorder=1) if name == highlight else dict(zorder=2)
        ax.plot(values, label=name, **style)
    for step, label in (marks or {}).items():
        ax.axvline(step, color="grey", ls=":", lw=1, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig


def positions_per_token(runs: dict[str, list[int]], ax=None, title: str = "positions computed per generated token"):
    """The cost of generation, one line per entry of `runs` (name -> positions fed through the model
    at each forward call, as probes.count_positions records them), with the running total in the
    legend. A KV cache computes each position once; without one, step t recomputes all t."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    for name, per_call in runs.items():
        ax.plot(range(1, len(per_call) + 1), per_call, marker=".", ms=3, label=f"{name}: {sum(per_call):,} in all")
    ax.set_xlabel("generated token")
    ax.set_ylabel("positions fed through the model")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
