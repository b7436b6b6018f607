"""Transformer Debug: the course library.

What the notebooks share, and nothing a student is asked to fix:
  tasks    synthetic data with a known best result (MarkovLanguage, ABeforeB, RarePositives)
  probes   diagnostics that localise a bug (causality, attention maps, entropy)
  plots    matplotlib figures for the probes and training curves
  grading  helpers the hidden tests use (time limits, mutation-grading your test)
  portable  trained results as bands that read the same on every CPU (for nbval)
  authoring  the course author's tools (markers, catalog, release, bug matrix)
"""
import random

import torch

__all__ = ["setup"]


def setup(seed: int = 0, threads: int = 1) -> torch.device:
    """Seed torch and Python, pin torch to `threads` CPU threads, return the device to use.

    Tiny models run far faster on one thread than on two here (thread start-up dwarfs
    the arithmetic), and a fixed thread count keeps float sums bit-identical run to run.
    """
    torch.set_num_threads(threads)
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
