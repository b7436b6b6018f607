"""Figures for the probes and for training curves.

Every helper draws on axes it is given (or makes its own figure), returns the figure,
and never touches matplotlib's global settings.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

__all__ = ["attention_maps", "loss_curves", "leak_bars", "per_layer"]


def attention_maps(maps: dict[str, torch.Tensor], title: str = "") -> plt.Figure:
    """One row per entry of `maps` (name -> (H, T, T) weights), one column per head."""
    names = list(maps)
    n_heads = maps[names[0]].size(0)
    fig, axes = plt.subplots(len(names), n_heads, figsize=(2.2 * n_heads, 2.3 * len(names)),
                             squeeze=False, constrained_layout=True)
    for row, name in enumerate(names):
        for h in range(n_heads):
            ax = axes[row, h]
            image = ax.imshow(maps[name][h].detach().float().cpu().numpy(), vmin=0, vmax=1, cmap="viridis")
            ax.set_title(f"{name}: head {h}", fontsize=9)
            ax.set_xticks([]), ax.set_yticks([])
            if h == 0:
                ax.set_ylabel("query position")
            if row == len(names) - 1:
                ax.set_xlabel("key position")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    if title:
        fig.suptitle(title)
    return fig


def loss_curves(curves: dict[str, list[float]], floor: float | None = None,
                ceiling: float | None = None, ax=None, ylabel: str = "loss (nats/token)"):
    """Training curves, with the task's best possible loss (`floor`) and ln V (`ceiling`)."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        ax.plot(values, label=name)
    if floor is not None:
        ax.axhline(floor, color="k", ls="--", lw=1, label=f"entropy floor {floor:.3f}")
    if ceiling is not None:
        ax.axhline(ceiling, color="grey", ls=":", lw=1, label=f"ln V {ceiling:.3f} (guessing)")
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
