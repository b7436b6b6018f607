"""Hidden tests of 05_precision accept any correct fix, not only the author's way of writing it.

Each variant below fixes the four planted bugs differently from the source notebook (other torch
ops, other orders of operations). Every autograded test cell must pass on each of them, and the
author's model answer to "your test" must too.
"""
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, answer_cell, points_lost, run_graded_cells


def softmax_in_float32(x, dim=-1):
    """Upcast, subtract the row maximum (torch.max), exponentiate, divide, cast back."""
    x32 = x.float()
    e = torch.exp(x32 - x32.max(dim=dim, keepdim=True).values)
    return torch.div(e, e.sum(dim=dim, keepdim=True)).to(x.dtype)


def softmax_shift_first(x, dim=-1):
    """Shift in the input dtype, then normalise by multiplying with the reciprocal of the sum."""
    shifted = x - x.detach().amax(dim=dim, keepdim=True)
    e = shifted.exp()
    return e * e.sum(dim=dim, keepdim=True).reciprocal()


def mask_with_where(scores, mask):
    """torch.where against a tensor holding the dtype's lowest value."""
    lowest = torch.full_like(scores, torch.finfo(scores.dtype).min)
    return torch.where(mask, scores, lowest)


def mask_with_minus_1e4(scores, mask):
    """The classic float16-safe constant: far below any real score, far inside float16's range."""
    return scores.masked_fill(mask.logical_not(), -1e4)


def step_clip_by_hand(model, x, y, optimizer, scaler, max_norm=1.0):
    """Unscale, clip with a hand-written norm, and skip the step by hand when it is not finite."""
    with torch.autocast(x.device.type, dtype=torch.float16):
        logits = model(x)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
    optimizer.zero_grad()
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if torch.isfinite(norm):
        coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef)
        optimizer.step()
    scaler.update()  # unscale_ recorded the overflow, so the scale still backs off
    return loss.item(), norm.item()


def step_clip_scaled_threshold(model, x, y, optimizer, scaler, max_norm=1.0):
    """Clip the still-scaled gradients against max_norm times the scale, then unscale."""
    with torch.autocast(x.device.type, dtype=torch.float16):
        loss = F.cross_entropy(model(x).float().flatten(0, -2), y.flatten())
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scale = scaler.get_scale()
    scaled_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm * scale)
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    return loss.item(), scaled_norm.item() / scale


def variants():
    out = {}
    for name, soft, mask, step in (
            ("float32-where-by-hand", softmax_in_float32, mask_with_where, step_clip_by_hand),
            ("shift-1e4-scaled-threshold", softmax_shift_first, mask_with_minus_1e4, step_clip_scaled_threshold)):
        namespace = {}
        exec(answer_cell("05_precision", "precision-code"), namespace)
        # attend looks softmax and mask_scores up in its own namespace, so it uses these fixes
        namespace.update(softmax=soft, mask_scores=mask, train_step=step)
        out[name] = {k: namespace[k] for k in ("softmax", "mask_scores", "attend", "train_step")}
    return out


@pytest.mark.parametrize("name", list(variants()))
def test_05_hidden_tests_pass_on_other_correct_fixes(name, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "05_precision")  # grading finds source/ from here
    run_graded_cells("05_precision", variants()[name], your_test="test_precision")


def softmax_upcast_only(x, dim=-1):
    """Upcast to float32 and exponentiate the raw logits: fine in float16's range, NaN past 88."""
    e = x.float().exp()
    return (e / e.sum(dim, keepdim=True)).to(x.dtype)


def mask_with_minus_inf(scores, mask):
    """-inf fits every dtype, but a query that may see no key gets NaN."""
    return scores.masked_fill(~mask, float("-inf"))


@pytest.mark.parametrize("name, replacement, lost", [
    ("softmax", softmax_upcast_only, {"hidden-softmax": 2}),
    ("mask_scores", mask_with_minus_inf, {"hidden-mask": 2}),
])
def test_05_plausible_wrong_fixes_lose_points(name, replacement, lost):
    """Each passes every visible test and looks right; the hidden tests must take points off."""
    namespace = {}
    exec(answer_cell("05_precision", "precision-code"), namespace)
    namespace[name] = replacement  # attend looks it up in this namespace
    assert points_lost("05_precision", {k: namespace[k] for k in ("softmax", "mask_scores", "attend", "train_step")}) == lost


def test_05_the_overflow_probe_shows_the_upcast_only_softmax():
    """The probe sweeps float16's whole range, so it turns red where the upcast-only softmax breaks."""
    from transformer_debug import probes
    sizes = probes.logit_magnitudes(torch.float16)
    errors = probes.softmax_overflow(softmax_upcast_only, sizes).tolist()
    assert [m for m, e in zip(sizes, errors) if e > 1e-2][0] < 100
