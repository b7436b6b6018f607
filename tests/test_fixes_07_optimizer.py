"""Hidden tests of 07_optimizer accept any correct fix, and reject plausible wrong ones.

Each correct variant below fixes the five planted bugs differently from the source notebook (a rule
by names or by module type, a closed-form schedule, torchtune's per-micro-batch weighting or a single
backward pass). Every autograded test cell must pass on each of them, and the author's model answer
to "your test" must too. Two plausible wrong fixes pass every visible test and still lose points in
the hidden ones.
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import ROOT, answer_cell, graded_cells, run_graded_cells

ASSIGNMENT = "07_optimizer"


def groups_by_name(model, weight_decay):
    """The planted rule's names, made exclusive: a name that matches a no-decay key never decays."""
    keys = ("bias", "ln", "tok", "pos")
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if not any(k in n for k in keys)], "weight_decay": weight_decay},
            {"params": [p for n, p in named if any(k in n for k in keys)], "weight_decay": 0.0}]


def groups_by_type(model, weight_decay):
    """Walk the modules; a linear layer's 2-d weight decays. No-decay group first."""
    decay, rest, seen = [], [], set()
    for module in model.modules():
        for _, p in module.named_parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                (decay if isinstance(module, nn.Linear) and p.dim() == 2 else rest).append(p)
    return [{"params": rest, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def factor_closed_form(step, total, warmup):
    """min(ramp, cosine): the ramp is below 1 exactly during warmup, the cosine at most 1."""
    W = int(warmup * total)
    ramp = (step + 1) / W if W else 1.0
    progress = min(1.0, max(0.0, (step - W) / max(1, total - W)))
    return min(ramp, 0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def factor_decay_first(step, total, warmup):
    """ceil for the warmup length (exact here), the decay branch first."""
    W = math.ceil(warmup * total)
    if step >= W:
        return 0.1 + 0.9 * (1 + math.cos(math.pi * (step - W) / (total - W))) / 2
    return (step + 1) / W


def step_torchtune(model, optimizer, scheduler, micro_batches):
    """Gradients cleared by hand; each micro-batch's mean weighted by its share of the counted targets."""
    for p in model.parameters():
        p.grad = None
    counts = [(y != -100).sum() for _, y in micro_batches]
    all_counted = sum(counts)
    total = 0.0
    for (x, y), n in zip(micro_batches, counts):
        logits = model(x)
        share = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)) * n / all_counted
        share.backward()
        total += share.item()
    optimizer.step()
    scheduler.step()
    return total


def step_one_backward(model, optimizer, scheduler, micro_batches):
    """Sum every token loss, divide once, one backward pass (torchtune PR 1875's first approach)."""
    optimizer.zero_grad()
    summed = sum(F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum") for x, y in micro_batches)
    loss = summed / sum((y != -100).sum() for _, y in micro_batches)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def groups_decay_norms(model, weight_decay):
    """Wrong: the overlap removed from the no-decay side, so LayerNorm gains and embeddings decay."""
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if n.endswith("weight")], "weight_decay": weight_decay},
            {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0}]


def step_zero_grad_after(model, optimizer, scheduler, micro_batches):
    """Wrong: gradients cleared after the step, so whatever .grad held before the first call is applied."""
    n = sum(int((y != -100).sum()) for _, y in micro_batches)
    total = 0.0
    for x, y in micro_batches:
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum") / n
        loss.backward()
        total += loss.item()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return total


def names(**override):
    """The author's answer cell and the harness's model (the visible tests use TinyLM), with overrides."""
    namespace = {}
    exec(answer_cell(ASSIGNMENT, "optimizer-code"), namespace)
    exec(harness_code(), namespace)
    namespace.update(override)
    return {k: namespace[k] for k in ("param_groups", "lr_factor", "train_step", "IGNORE", "MIN_FACTOR", "TinyLM")}


def harness_code():
    from transformer_debug.authoring.builds import read_source
    _, nb = read_source(ROOT, ASSIGNMENT)
    [cell] = [c for c in nb.cells if c.get("id") == "harness"]
    return "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n" + cell.source


CORRECT = {
    "names-closed-form-torchtune": dict(param_groups=groups_by_name, lr_factor=factor_closed_form,
                                        train_step=step_torchtune),
    "types-decay-first-one-backward": dict(param_groups=groups_by_type, lr_factor=factor_decay_first,
                                           train_step=step_one_backward),
}


@pytest.mark.parametrize("name", list(CORRECT))
def test_07_hidden_tests_pass_on_other_correct_fixes(name, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / ASSIGNMENT)  # grading finds source/ from here
    run_graded_cells(ASSIGNMENT, names(**CORRECT[name]), your_test="test_optimizer")


def failing_cells(namespace: dict) -> set[str]:
    failed = set()
    for cell, code in graded_cells(ASSIGNMENT).items():
        if cell == "hidden-your-test":
            continue  # grades the student's test, not the code
        try:
            exec(code, dict(namespace))
        except Exception:  # noqa: BLE001 (any failure loses the cell's points)
            failed.add(cell)
    return failed


@pytest.mark.parametrize("override, loses", [
    (dict(param_groups=groups_decay_norms), {"hidden-groups"}),
    (dict(train_step=step_zero_grad_after), {"hidden-sgd-steps"}),
])
def test_07_plausible_wrong_fixes_pass_the_visible_tests_and_lose_hidden_points(override, loses, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / ASSIGNMENT)
    assert failing_cells(names(**override)) == loses
    assert failing_cells(names()) == set()  # the same harness passes everything with the author's fix


def test_07_the_wrong_decay_fix_really_decays_layernorm_gains():
    torch.manual_seed(0)
    model = names()["TinyLM"]()
    decayed = {id(p) for p in groups_decay_norms(model, 0.1)[0]["params"]}
    assert id(model.ln_f.weight) in decayed and id(model.tok.weight) in decayed
