"""Hidden tests of 08_metrics accept any correct fix, and reject plausible wrong ones.

Correct fixes, written differently from the source notebook:
- counts and ranks: predict under inference_mode with train(False); decide in logit space; accuracy and
  F1 from running counts by hand; ROC-AUC as the Mann-Whitney statistic with tied scores sharing their
  average rank (scipy's rankdata);
- a frozen copy: predict on a deep copy in eval mode (the original is never touched); 0/1 integer
  decisions; accuracy as a tensor mean; F1 and ROC-AUC through scikit-learn on other inputs (explicit
  pos_label, raw logits);
- weighted batches: the author's code, except accuracy as the mean of per-batch accuracies weighted by
  batch size, and predict restoring the mode without try/finally.
Every graded cell must pass on each, and so must the author's model answer to "your test".

Wrong fixes that look right (and pass the visible tests) must lose points in the hidden tests:
eval() without handing the mode back, a decision rule that is only right at threshold 0.5 (twice),
and a ROC-AUC by hand that ignores ties.
"""
import copy
import math

import numpy as np
import pytest
import torch
from scipy.stats import rankdata
from sklearn.metrics import f1_score, roc_auc_score

from conftest import ROOT, answer_cell, graded_cells, run_graded_cells

NAMES = ("predict", "decide", "StreamingMetric", "Accuracy", "F1", "RocAuc", "evaluate")


def metrics_08(**replacements):
    """The author's answer cell with some names replaced; what the graded cells use."""
    namespace = {}
    exec(answer_cell("08_metrics", "metrics-code"), namespace)
    for name, value in replacements.items():
        namespace[name] = value(namespace) if name in CLASS_FACTORIES else value
    return {n: namespace[n] for n in NAMES}


CLASS_FACTORIES = {"Accuracy", "F1", "RocAuc"}  # built on the cell's own StreamingMetric and decide


# --- correct fix 1: counts and ranks -------------------------------------------------------------

def predict_inference_mode(model, x):
    mode = model.training
    model.train(False)
    try:
        with torch.inference_mode():
            return model(x)
    finally:
        model.train(mode)


def decide_in_logit_space(logits, threshold=0.5):
    return logits > math.log(threshold) - math.log1p(-threshold)


def accuracy_by_counts(ns):
    class Accuracy(ns["StreamingMetric"]):
        def compute(self):
            right = sum(int((ns["decide"](z, self.threshold).long() == y).sum()) for z, y in self.batches)
            return right / sum(len(y) for _, y in self.batches)
    return Accuracy


def f1_by_counts(ns):
    class F1(ns["StreamingMetric"]):
        def compute(self):
            logits, labels = self.collected()
            d = ns["decide"](logits, self.threshold).long()
            tp = int(((d == 1) & (labels == 1)).sum())
            fp = int(((d == 1) & (labels == 0)).sum())
            fn = int(((d == 0) & (labels == 1)).sum())
            return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return F1


def auc_by_average_ranks(ns):
    class RocAuc(ns["StreamingMetric"]):
        def compute(self):
            logits, labels = self.collected()
            ranks = rankdata(logits.double().numpy())  # tied scores share their average rank
            positive = labels.numpy() == 1
            n_pos, n_neg = positive.sum(), (~positive).sum()
            return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return RocAuc


def counts_and_ranks():
    return metrics_08(predict=predict_inference_mode, decide=decide_in_logit_space, Accuracy=accuracy_by_counts,
                      F1=f1_by_counts, RocAuc=auc_by_average_ranks)


# --- correct fix 2: a frozen copy -------------------------------------------------------------------

def predict_on_a_copy(model, x):
    frozen = copy.deepcopy(model).eval()
    with torch.no_grad():
        return frozen(x)


def decide_as_integers(logits, threshold=0.5):
    return torch.sigmoid(logits).gt(threshold).long()


def accuracy_as_tensor_mean(ns):
    class Accuracy(ns["StreamingMetric"]):
        def compute(self):
            logits, labels = self.collected()
            return (ns["decide"](logits, self.threshold).bool() == labels.bool()).double().mean().item()
    return Accuracy


def f1_explicit_label(ns):
    class F1(ns["StreamingMetric"]):
        def compute(self):
            logits, labels = self.collected()
            decisions = ns["decide"](logits, self.threshold).long().numpy()
            return float(f1_score(labels.numpy(), decisions, pos_label=1, average="binary"))
    return F1


def auc_of_logits(ns):
    class RocAuc(ns["StreamingMetric"]):
        def compute(self):
            logits, labels = self.collected()
            return float(roc_auc_score(labels.numpy(), logits.double().numpy()))
    return RocAuc


def frozen_copy():
    return metrics_08(predict=predict_on_a_copy, decide=decide_as_integers, Accuracy=accuracy_as_tensor_mean,
                      F1=f1_explicit_label, RocAuc=auc_of_logits)


# --- correct fix 3: weighted batches ------------------------------------------------------------------

def predict_restore_plainly(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was_training)
    return out


def accuracy_weighted_by_batch_size(ns):
    from sklearn.metrics import accuracy_score

    class Accuracy(ns["StreamingMetric"]):
        def compute(self):
            per_batch = [accuracy_score(y.numpy(), ns["decide"](z, self.threshold).numpy()) for z, y in self.batches]
            return float(np.average(per_batch, weights=[len(y) for _, y in self.batches]))
    return Accuracy


def weighted_batches():
    return metrics_08(predict=predict_restore_plainly, Accuracy=accuracy_weighted_by_batch_size)


FIXES = {"counts-and-ranks": counts_and_ranks, "frozen-copy": frozen_copy, "weighted-batches": weighted_batches}


@pytest.mark.parametrize("make", FIXES.values(), ids=FIXES.keys())
def test_08_hidden_tests_pass_on_other_correct_fixes(make, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "08_metrics")  # grading finds source/ from here
    run_graded_cells("08_metrics", make(), your_test="test_metrics")


def test_08_the_fixes_really_differ_from_the_author_and_agree_with_it():
    author = metrics_08()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(97, generator=g) * 3
    labels = (torch.rand(97, generator=g) < 0.15).long()
    sizes = [20, 20, 20, 20, 17]
    for make in FIXES.values():
        fix = make()
        assert any(fix[n] is not author[n] for n in ("predict", "decide", "Accuracy"))
        for threshold in (0.5, 0.3):
            assert torch.equal(fix["decide"](logits, threshold).bool(), author["decide"](logits, threshold))
            for name in ("Accuracy", "F1", "RocAuc"):
                mine, theirs = fix[name](threshold), author[name](threshold)
                for z, y in zip(logits.split(sizes), labels.split(sizes)):
                    mine.update(z, y)
                    theirs.update(z, y)
                assert mine.compute() == pytest.approx(theirs.compute(), abs=1e-12), (name, threshold)


# --- wrong fixes: they look right, pass the visible tests, and must lose hidden points -------------------

def predict_eval_forever(model, x):
    """Switches dropout off, and leaves it off for the rest of training."""
    model.eval()
    with torch.no_grad():
        return model(x)


def decide_logits_above_zero(logits, threshold=0.5):
    """Right at threshold 0.5 only: logit 0 is probability 0.5."""
    return logits > 0


def f1_of_rounded_probabilities(ns):
    class F1(ns["StreamingMetric"]):
        def compute(self):
            logits, labels = self.collected()
            return float(f1_score(labels.numpy(), torch.sigmoid(logits).round().numpy()))  # always 0.5
    return F1


def auc_by_sorting(ns):
    class RocAuc(ns["StreamingMetric"]):
        def compute(self):
            logits, labels = self.collected()
            ranks = logits.argsort().argsort().double() + 1  # ties get distinct ranks, by position
            positive = labels == 1
            n_pos, n_neg = int(positive.sum()), int((~positive).sum())
            return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return RocAuc


WRONG = {
    "eval-without-restoring-the-mode": (dict(predict=predict_eval_forever), {"hidden-predict"}),
    "decide-logits-above-zero": (dict(decide=decide_logits_above_zero), {"hidden-decide", "hidden-evaluate"}),
    "f1-of-rounded-probabilities": (dict(F1=f1_of_rounded_probabilities), {"hidden-evaluate"}),
    "auc-without-ties": (dict(RocAuc=auc_by_sorting), {"hidden-roc-auc"}),
}


def failing_cells(names: dict) -> set[str]:
    """The graded cells (visible and hidden, not the student's-test cell) that fail with `names`."""
    failed = set()
    for cell, code in graded_cells("08_metrics").items():
        if cell == "hidden-your-test":
            continue
        try:
            exec(code, dict(names))
        except Exception:  # noqa: BLE001 (any failure loses the cell's points)
            failed.add(cell)
    return failed


@pytest.mark.parametrize("wrong", WRONG, ids=WRONG.keys())
def test_08_plausible_wrong_fixes_pass_the_visible_tests_and_lose_hidden_points(wrong):
    replacements, expected = WRONG[wrong]
    failed = failing_cells(metrics_08(**replacements))
    assert not {c for c in failed if c.startswith("visible-")}, f"{wrong} should pass the visible tests: {failed}"
    assert failed == expected, f"{wrong} fails {sorted(failed)}, expected exactly {sorted(expected)}"
