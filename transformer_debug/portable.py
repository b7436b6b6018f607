"""Results that read the same on every CPU, for nbval to compare.

Training amplifies the last bits of float rounding, and torch picks different vectorised
kernels on different processors (AVX-512, AVX2, or none: ATEN_CPU_CAPABILITY), so the third
decimal of a trained loss is not a portable fact. A notebook therefore prints its raw numbers
in a cell tagged `nbval-ignore-output`, and then, in the next cell, `in_bands`: one line per
result saying whether it lies in the band the fixed code reaches. That line is the same on
every CPU, and it still changes when a fix breaks a result.
"""
from __future__ import annotations

import math

__all__ = ["in_bands"]


def in_bands(results: dict[str, float], expected: dict[str, tuple[float, float]]) -> str:
    """One line per result: its name, its expected band [low, high], and "yes" or "NO".

    The raw value is left out on purpose (print it in the ignored cell before). Every
    result needs a band and every band a result: a typo must not silently check nothing.
    """
    if set(results) != set(expected):
        raise KeyError(f"results {sorted(results)} and expected bands {sorted(expected)} name different things")
    width = max(map(len, expected), default=0)
    lines = []
    for name, (low, high) in expected.items():
        if not low <= high:
            raise ValueError(f"band for {name!r} is empty: low {low} is above high {high}")
        value = float(results[name])
        ok = math.isfinite(value) and low <= value <= high
        lines.append(f"{name:{width}}  expected {low:g} to {high:g}: {'yes' if ok else 'NO'}")
    return "\n".join(lines)
