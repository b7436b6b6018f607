"""Diagnostic probes: small experiments that tell you where a bug is, not how to fix it.

Each probe takes the code under study as an argument and returns numbers; plots.py
draws them. None of them edits the model or reads notebook globals.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .tasks import seeded

__all__ = ["causality_leak", "attention_entropy", "lagged_heads", "attention_maps", "row_sums",
           "logit_magnitudes", "softmax_overflow", "order_sensitivity", "padding_leak", "gradient_norms",
           "dead_parameters", "output_scales", "pad_sensitivity", "bag_of_tokens_accuracy",
           "overlap", "first_difference", "state_differences", "describe_state", "step_errors",
           "PositionCount", "count_positions"]


@torch.no_grad()
def causality_leak(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   vocab_size: int | None = None, seed: int = 0) -> torch.Tensor:
    """How much each position's output moves when only *later* inputs change.

    x: (B, T, C) floats, or (B, T) token ids with `vocab_size` given. Returns (T,):
    leak[t] = max |fn(x)[:, t] - fn(x')[:, t]| where x' differs from x only after t.
    A causal model gives exactly zeros; anything else reads the future.
    """
    g = seeded(seed)
    y = fn(x)
    T = x.size(1)
    leak = torch.zeros(T)
    for t in range(T - 1):
        x2 = x.clone()
        if x.dtype.is_floating_point:
            x2[:, t + 1:] = torch.randn(x2[:, t + 1:].shape, generator=g).to(x2)
        else:
            assert vocab_size, "token inputs need vocab_size to draw replacement tokens"
            x2[:, t + 1:] = torch.randint(vocab_size, x2[:, t + 1:].shape, generator=g).to(x2)
        leak[t] = (fn(x2)[:, t] - y[:, t]).abs().max()
    return leak


def row_sums(weights: torch.Tensor) -> torch.Tensor:
    """(..., T, T) -> (..., T): how much attention each query hands out (should be 1)."""
    return weights.sum(-1)


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """(..., T, T) -> (T,): mean entropy (nats) of each query's attention over keys.

    Query t of a causal model can spread over t + 1 keys, so the most it can have is
    log(t + 1). Entropy near zero at initialisation means the softmax is saturated.
    """
    ent = -torch.special.xlogy(weights, weights).sum(-1)
    return ent.reshape(-1, weights.size(-2)).mean(0)


def lagged_heads(n_heads: int = 4, d_head: int = 16, seq_len: int = 12, logit: float = 3.0):
    """Queries and keys wired so that head h of token t looks back h + 1 tokens.

    Keys are orthonormal vectors u_t; head h's query at t is c * u_{t-1-h}, so its
    scaled score is `logit` on key t-1-h and 0 elsewhere. Returns the inputs twice:
      q, k:             (1, T, C) with head h of token t in columns h*D:(h+1)*D
      q_heads, k_heads: (1, H, T, D) the same numbers, one head per slice
    Both layouts are filled element by element from that definition.
    """
    assert seq_len <= d_head, "orthonormal keys need seq_len <= d_head"
    H, D, T = n_heads, d_head, seq_len
    u = torch.linalg.qr(torch.randn(D, D, generator=seeded(0)))[0][:T]  # (T, D) orthonormal rows
    c = logit * math.sqrt(D)  # the scale undoes the 1/sqrt(D) of attention
    q_heads, k_heads = torch.zeros(1, H, T, D), torch.zeros(1, H, T, D)
    q, k = torch.zeros(1, T, H * D), torch.zeros(1, T, H * D)
    for h in range(H):
        for t in range(T):
            k_heads[0, h, t] = k[0, t, h * D:(h + 1) * D] = u[t]
            if t - 1 - h >= 0:
                q_heads[0, h, t] = q[0, t, h * D:(h + 1) * D] = c * u[t - 1 - h]
    return q, k, q_heads, k_heads


@torch.no_grad()
def attention_maps(split_heads, scores, weights, n_heads: int = 4, d_head: int = 16,
                   seq_len: int = 12) -> dict[str, torch.Tensor]:
    """Attention weights on the lagged_heads inputs: yours against torch's.

    split_heads, scores, weights: your (B, T, C) -> (B, H, T, D), (q, k) -> scores and
    scores -> causal softmax. Returns {"yours": (H, T, T), "torch": (H, T, T)}; torch's
    comes from F.scaled_dot_product_attention with the identity as values, which
    returns the attention weights themselves.
    """
    q, k, q_heads, k_heads = lagged_heads(n_heads, d_head, seq_len)
    yours = weights(scores(split_heads(q), split_heads(k)))[0]
    eye = torch.eye(seq_len).expand(1, n_heads, seq_len, seq_len)
    ref = F.scaled_dot_product_attention(q_heads, k_heads, eye, is_causal=True)[0]
    return {"yours": yours, "torch": ref}


def logit_magnitudes(dtype: torch.dtype = torch.float16, dense_to: int = 24, per_octave: int = 4) -> list[float]:
    """Logit sizes that cover all of `dtype`'s range, for softmax_overflow.

    Every integer 0..dense_to (where float16's exp overflows, at 11.09), then `per_octave` sizes per
    doubling up to the dtype's largest number (65504 for float16), which ends the list. A softmax
    that only breaks at large logits (exp of float32 overflows past 88.7) shows up too.
    """
    top = torch.finfo(dtype).max
    assert dense_to < top, f"dense_to={dense_to} is beyond {dtype}'s largest number {top}"
    sizes = [float(m) for m in range(dense_to + 1)]
    k = 1
    while dense_to * 2 ** (k / per_octave) < top:
        sizes.append(dense_to * 2 ** (k / per_octave))
        k += 1
    return sizes + [float(top)]


@torch.no_grad()
def softmax_overflow(softmax: Callable[..., torch.Tensor], magnitudes, dtype: torch.dtype = torch.float16,
                     n_rows: int = 8, n_keys: int = 16, seed: int = 0) -> torch.Tensor:
    """How far `softmax(x, dim=-1)` is from the exact answer as the logits grow, in `dtype`.

    For each magnitude m, x is a seeded (n_rows, n_keys) tensor with each row scaled so that its
    largest |entry| is exactly m, then cast to `dtype`. Returns (len(magnitudes),) float64: the largest
    absolute error against a float64 softmax of the same (rounded) logits, or inf where the
    output holds NaN or inf. A float16 softmax that exponentiates raw logits breaks near
    ln(65504) = 11.09; a stable one stays within float16 rounding (~1e-3) at any m.
    """
    z = torch.randn(n_rows, n_keys, generator=seeded(seed), dtype=torch.float64)
    z = z / z.abs().amax(-1, keepdim=True)
    errors = []
    for m in magnitudes:
        x = (float(m) * z).to(dtype)
        out = softmax(x, dim=-1)
        exact = torch.softmax(x.double(), dim=-1)
        finite = torch.isfinite(out).all().item()
        errors.append((out.double() - exact).abs().max().item() if finite else math.inf)
    return torch.tensor(errors, dtype=torch.float64)


@torch.no_grad()
def order_sensitivity(fn: Callable[[torch.Tensor], torch.Tensor], idx: torch.Tensor,
                      n_shuffles: int = 8, seed: int = 0) -> torch.Tensor:
    """How much the output moves when the tokens of every sequence are shuffled.

    fn maps (B, T) token ids to (B, ...) outputs, for instance a classifier's logits.
    Returns (n_shuffles,): max |fn(shuffled) - fn(idx)| for each of n_shuffles random
    orders (one permutation of the T positions, shared by the batch). A model without
    positions sees a bag of tokens, so every value is zero up to float rounding.
    """
    g = seeded(seed)
    y = fn(idx)
    changes = torch.zeros(n_shuffles)
    for i in range(n_shuffles):
        order = torch.randperm(idx.size(1), generator=g).to(idx.device)
        changes[i] = (fn(idx[:, order]) - y).abs().max()
    return changes


@torch.no_grad()
def padding_leak(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                 real: torch.Tensor, extra: int = 3, seed: int = 0) -> torch.Tensor:
    """How much each real position's output moves when only the padding changes.

    fn(x, real) -> (B, T, ...), with x: (B, T, C) floats and real: (B, T) bool, True at real
    tokens. Two changes, neither touching a real input: fresh random values at every pad,
    and `extra` more pads appended after every sequence. Returns (T,): leak[t] is the largest
    change of the output at t over the sequences where t is real (0 where it never is). A
    NaN or inf at a real position counts as an infinite change. Pads' own outputs are not
    compared (check separately that they are finite).
    """
    g = seeded(seed)
    B, T = real.shape
    y = fn(x, real)
    new_pads = x.clone()
    new_pads[~real] = torch.randn(new_pads[~real].shape, generator=g).to(x)
    longer = torch.cat([x, torch.randn(B, extra, *x.shape[2:], generator=g).to(x)], 1)
    longer_real = torch.cat([real, real.new_zeros(B, extra)], 1)
    leak = torch.zeros(T)
    for moved in (fn(new_pads, real), fn(longer, longer_real)[:, :T]):
        change = (moved - y).abs().flatten(2).amax(-1).nan_to_num(nan=math.inf)  # (B, T)
        leak = torch.maximum(leak, change.masked_fill(~real, 0).amax(0).float().cpu())
    return leak


def gradient_norms(modules) -> list[float]:
    """After a backward pass: the L2 norm of all gradients of each module, in order.

    Pass the blocks of a stack (`model.blocks`) to see how gradient size changes with
    depth. A parameter without a gradient counts as zero, so an unused layer shows up.
    """
    norms = []
    for module in modules:
        squares = [p.grad.detach().double().pow(2).sum() for p in module.parameters() if p.grad is not None]
        norms.append(torch.stack(squares).sum().sqrt().item() if squares else 0.0)
    return norms


def dead_parameters(model: torch.nn.Module) -> dict[str, str]:
    """After a backward pass: name -> what is wrong, for every parameter whose gradient is
    missing (None: the parameter never took part), all zero, or not finite. Empty: healthy."""
    dead = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            dead[name] = "no gradient"
        elif not torch.isfinite(p.grad).all():
            dead[name] = "NaN or inf in the gradient"
        elif not p.grad.any():
            dead[name] = "gradient exactly zero"
    return dead


@torch.no_grad()
def output_scales(modules, fn: Callable, *args) -> list[float]:
    """Run fn(*args) and return the standard deviation of each module's output, in order.

    Uses forward hooks, so nothing in the model changes. With the blocks of a stack this
    shows the size of the residual stream after each block.
    """
    scales: dict[int, float] = {}
    handles = [m.register_forward_hook(lambda mod, inp, out, i=i: scales.__setitem__(i, out.float().std().item()))
               for i, m in enumerate(modules)]
    try:
        fn(*args)
    finally:
        for handle in handles:
            handle.remove()
    return [scales.get(i, float("nan")) for i in range(len(handles))]


# --- Notebook 06 (data): targets, padding and leakage ----------------------------------------------

@torch.no_grad()
def pad_sensitivity(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: torch.Tensor,
                    targets: torch.Tensor, pad: torch.Tensor, scale: float = 10.0, seed: int = 0) -> float:
    """How far a loss moves when only the logits at padded positions change.

    loss_fn(logits, targets) -> scalar, with logits (B, T, V) and targets (B, T); pad: (B, T) bool,
    True at positions that hold no real prediction. The logits there are replaced by fresh random
    values (`scale` times a standard normal) and the loss computed again. Returns |change| as a
    float: 0 for a loss that ignores padding, inf if either loss is not finite.
    """
    assert pad.shape == logits.shape[:2], f"pad {tuple(pad.shape)} should be (B, T) = {tuple(logits.shape[:2])}"
    g = seeded(seed)
    moved = logits.clone()
    moved[pad] = (scale * torch.randn(moved[pad].shape, generator=g, dtype=torch.float64)).to(moved)
    change = (loss_fn(moved, targets) - loss_fn(logits, targets)).abs().item()
    return change if math.isfinite(change) else math.inf


def bag_of_tokens_accuracy(x: torch.Tensor, y: torch.Tensor, vocab_size: int | None = None,
                           folds: int = 5, seed: int = 0) -> float:
    """A leak detector: how well a logistic regression predicts y from the bag of tokens of x.

    x: (N, T) token ids, y: (N,) class labels. Each sequence becomes its token counts (order thrown
    away) and scikit-learn's LogisticRegression is scored by stratified `folds`-fold cross-validation.
    Returns the mean held-out accuracy. On a task whose label depends only on order (ABeforeB) this
    sits at chance; far above chance means the inputs carry something that gives the label away.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = x.detach().cpu().long(), y.detach().cpu()
    assert x.dim() == 2 and y.shape == x.shape[:1], f"x should be (N, T) and y (N,), got {tuple(x.shape)}, {tuple(y.shape)}"
    assert x.min() >= 0, f"token ids should be >= 0, found {int(x.min())}"
    V = int(x.max()) + 1 if vocab_size is None else vocab_size
    assert x.max() < V, f"token id {int(x.max())} is outside vocab_size={V}"
    counts = torch.zeros(x.size(0), V).scatter_add_(1, x, torch.ones(x.shape))  # (N, V) occurrences
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = cross_val_score(LogisticRegression(max_iter=1000), counts.numpy(), y.numpy(), cv=cv)
    return float(scores.mean())


def overlap(train: torch.Tensor, val: torch.Tensor) -> int:
    """How many rows of val also occur, token for token, among the rows of train.

    Each row is hashed (SHA-1 of its int64 bytes), so the count takes one pass over each set
    and works for millions of rows. Duplicates across a split inflate validation scores.
    """
    import hashlib

    def digest(row):
        return hashlib.sha1(row.numpy().tobytes()).hexdigest()

    seen = {digest(row) for row in train.detach().cpu().long().contiguous()}
    return sum(digest(row) in seen for row in val.detach().cpu().long().contiguous())


# Notebook 09 (reproducibility): where two runs part ways, and what a checkpoint holds.

def first_difference(a, b) -> int | None:
    """The first index at which two sequences of numbers (losses per step, say) differ, compared
    exactly, NaN equal to NaN; None when they are identical. If one is a prefix of the other, the
    length of the shorter. Exact on purpose: a difference of 1e-7 at step 3 is where an
    irreproducible run begins, however small it looks."""
    for i, (x, y) in enumerate(zip(a, b)):
        if not (x == y or (x != x and y != y)):
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def state_differences(a: dict, b: dict) -> dict[str, float]:
    """The largest |a[k] - b[k]| for every entry of two state dicts (`model.state_dict()`):
    0.0 where the tensors are bitwise equal, inf where a key is on one side only or the
    shapes differ."""
    diffs = {}
    for key in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(key), b.get(key)
        if x is None or y is None or x.shape != y.shape:
            diffs[key] = math.inf
        elif x.numel() == 0:
            diffs[key] = 0.0
        else:
            diffs[key] = (x.detach().double() - y.detach().double()).abs().max().item()
    return diffs


def describe_state(obj) -> str:
    """One line on what a checkpoint entry holds: a tensor's dtype and shape, or for nested
    dicts, lists and tuples the number of tensors, the numbers in them, and other values
    (Python ints, floats, strings, None), e.g. '36 tensors (6,912 numbers), 14 other values'."""
    if isinstance(obj, torch.Tensor):
        return f"{str(obj.dtype).removeprefix('torch.')} tensor {tuple(obj.shape)}"
    tensors, numbers, others = 0, 0, 0
    todo = [obj]
    while todo:
        item = todo.pop()
        if isinstance(item, torch.Tensor):
            tensors, numbers = tensors + 1, numbers + item.numel()
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        else:
            others += 1
    parts = [f"{tensors} tensor{'s' * (tensors != 1)} ({numbers:,} numbers)"] if tensors else []
    parts += [f"{others} other value{'s' * (others != 1)}"] if others else []
    return ", ".join(parts) or "nothing"


def step_errors(step: Callable, model: torch.nn.Module, calls, ignore_index: int = -100) -> list[float]:
    """How far each optimizer step strays from the gradient of its own batch.

    `step(model, optimizer, micro_batches)` is called once per entry of `calls` (each a list
    of (inputs, targets) micro-batches, same T), on a copy of `model` with fresh gradients
    and SGD(lr=1), so the step's update should be exactly minus the gradient of the mean
    cross-entropy over every counted target of its micro-batches, taken as one batch.
    Returns, per call, max |update - gradient| / max |gradient|: rounding (about 1e-7 in
    float32, 1e-15 in float64) when right.
    """
    import copy

    model = copy.deepcopy(model)
    model.zero_grad(set_to_none=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    errors = []
    for micro_batches in calls:
        reference = copy.deepcopy(model)
        reference.zero_grad(set_to_none=True)
        inputs = torch.cat([x for x, _ in micro_batches])
        targets = torch.cat([y for _, y in micro_batches])
        F.cross_entropy(reference(inputs).flatten(0, 1), targets.flatten(), ignore_index=ignore_index).backward()
        before = [p.detach().clone() for p in model.parameters()]
        step(model, optimizer, micro_batches)
        grads = [r.grad if r.grad is not None else torch.zeros_like(r) for r in reference.parameters()]
        scale = max(g.abs().max().item() for g in grads)
        worst = max(((b - p.detach()) - g).abs().max().item() for b, p, g in zip(before, model.parameters(), grads))
        errors.append(worst / scale)
    return errors


class PositionCount:
    """What `count_positions` saw: `per_call[i]` is how many positions (the length of the input's
    last axis) forward call i fed through the model, per sequence; `total` is their sum."""

    def __init__(self):
        self.per_call: list[int] = []

    @property
    def calls(self) -> int:
        return len(self.per_call)

    @property
    def total(self) -> int:
        return sum(self.per_call)

    def __repr__(self):
        return f"PositionCount(calls={self.calls}, total={self.total})"


class count_positions:
    """Count the positions fed through `model`, without touching its code: a forward pre-hook
    records the length of the last axis of the first input of every call (token ids (B, T): T).

        with probes.count_positions(model) as count:
            generate(model, prompt, 10)
        count.per_call, count.total

    The hook is removed on exit, also when the body raises. Cost counted this way is exact and
    the same on every machine, unlike wall-clock time.
    """

    def __init__(self, model: torch.nn.Module):
        self.model, self.count, self._handle = model, PositionCount(), None

    def __enter__(self) -> PositionCount:
        def record(module, args, kwargs):
            x = args[0] if args else next(iter(kwargs.values()), None)
            if not isinstance(x, torch.Tensor):
                raise TypeError("count_positions: the model's first input should be a tensor of token ids")
            self.count.per_call.append(int(x.shape[-1]) if x.dim() else 1)

        self._handle = self.model.register_forward_pre_hook(record, with_kwargs=True)
        return self.count

    def __exit__(self, *exc):
        self._handle.remove()
        return False
