"""The course library's additions for notebook 08 (metrics): RarePositives and metric_curves.

The closed-form optima are checked two ways against scikit-learn: exactly, on a weighted
"population" with one row per (level, label) pair, and statistically, on a large sample of
the Bayes classifier's scores drawn by the task's own sampler.
"""
import math

import matplotlib
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from transformer_debug.tasks import RarePositives, seeded

matplotlib.use("Agg")


def population(task):
    """Every (level, label) pair once, weighted by its probability: sklearn's weighted
    metrics on it are the population metrics, exactly."""
    pos, neg = task.level_probs * task.positive_rates, task.level_probs * (1 - task.positive_rates)
    levels = torch.arange(len(pos))
    y = np.r_[np.ones(len(pos)), np.zeros(len(pos))]
    scores = torch.cat([task.positive_rates[levels]] * 2).numpy()
    weights = torch.cat([pos, neg]).numpy()
    return y, scores, weights


TASKS = [RarePositives(),
         RarePositives(level_probs=(0.5, 0.3, 0.2), positive_rates=(0.1, 0.45, 0.7)),
         RarePositives(vocab_size=3, seq_len=5, level_probs=(0.6, 0.2, 0.1, 0.06, 0.04),
                       positive_rates=(0.01, 0.1, 0.3, 0.6, 0.95))]


@pytest.mark.parametrize("task", TASKS, ids=["default", "three-levels", "five-levels"])
@pytest.mark.parametrize("threshold", [0.5, 0.2, 0.0])
def test_closed_forms_equal_sklearn_on_the_weighted_population(task, threshold):
    y, scores, w = population(task)
    expected = task.bayes_metrics(threshold)
    decisions = scores > threshold
    assert expected["accuracy"] == pytest.approx(accuracy_score(y, decisions, sample_weight=w), abs=1e-12)
    assert expected["f1"] == pytest.approx(f1_score(y, decisions, sample_weight=w), abs=1e-12)
    assert expected["roc_auc"] == pytest.approx(roc_auc_score(y, scores, sample_weight=w), abs=1e-12)
    assert task.positive_rate == pytest.approx(float((y * w).sum()), abs=1e-12)


def test_default_task_numbers():
    task = RarePositives()
    best = task.bayes_metrics()
    assert task.positive_rate == pytest.approx(0.1008, abs=1e-4)  # about 10% positives
    assert 1 - task.positive_rate == pytest.approx(0.899, abs=1e-3)  # "always negative" accuracy
    assert best == pytest.approx({"accuracy": 0.9448, "f1": 0.7251, "roc_auc": 0.9341}, abs=1e-4)
    # "always negative": F1 0, ROC-AUC of a constant score 0.5
    assert task.bayes_metrics(threshold=1.0) == pytest.approx(
        {"accuracy": 1 - task.positive_rate, "f1": 0.0, "roc_auc": best["roc_auc"]})
    # hard Bayes decisions as scores lose ROC-AUC: (1 + TPR - FPR) / 2
    y, scores, w = population(task)
    assert roc_auc_score(y, scores > 0.5, sample_weight=w) == pytest.approx(0.8460, abs=1e-4)


def test_a_large_sample_of_the_bayes_classifier_scores_the_closed_forms():
    task = RarePositives()
    n = 400_000
    x, y = task.sample(n, seeded(123))
    scores = task.posterior(x).numpy()
    best = task.bayes_metrics()
    # tolerances: about 5 standard errors at n = 400k
    assert y.double().mean().item() == pytest.approx(task.positive_rate, abs=5 * math.sqrt(0.1 * 0.9 / n))
    assert accuracy_score(y, scores > 0.5) == pytest.approx(best["accuracy"], abs=0.002)
    assert f1_score(y, scores > 0.5) == pytest.approx(best["f1"], abs=0.007)
    assert roc_auc_score(y, scores) == pytest.approx(best["roc_auc"], abs=0.004)
    # the sampler's level frequencies and per-level positive rates are the stated ones
    k = task.levels(x)
    for level, (p, rate) in enumerate(zip(task.level_probs.tolist(), task.positive_rates.tolist())):
        at = k == level
        assert at.double().mean().item() == pytest.approx(p, abs=0.003)
        assert y[at].double().mean().item() == pytest.approx(rate, abs=0.02)


@pytest.mark.parametrize("task", TASKS, ids=["default", "three-levels", "five-levels"])
def test_best_f1_beats_every_threshold_and_sits_at_half_its_value(task):
    best, threshold = task.best_f1
    assert task.bayes_metrics(threshold)["f1"] == pytest.approx(best, abs=1e-12)
    for t in np.linspace(0, 1, 201):
        assert task.bayes_metrics(float(t))["f1"] <= best + 1e-12
    # accuracy is best at 0.5
    assert task.bayes_metrics(0.5)["accuracy"] >= max(task.bayes_metrics(float(t))["accuracy"]
                                                       for t in np.linspace(0, 1, 201)) - 1e-12


def test_default_task_f1_and_accuracy_agree_on_the_decision():
    task = RarePositives()
    best, threshold = task.best_f1
    assert task.bayes_metrics(0.5)["f1"] == pytest.approx(best)  # no level between F1/2 and 0.5
    assert 0.2 < threshold < 0.5  # between the rates of 1 and 2 alarms


def test_sequences_hold_exactly_their_alarms_and_tokens_in_range():
    task = RarePositives()
    x, y = task.sample(2000, seeded(0))
    assert x.shape == (2000, task.seq_len) and y.shape == (2000,)
    assert x.dtype == torch.long and y.dtype == torch.long
    assert x.min() >= 0 and x.max() < task.vocab_size
    assert set(y.unique().tolist()) == {0, 1}
    assert task.levels(x).max() == len(task.level_probs) - 1
    assert task.n_classes == 2
    logits = task.bayes_logits(x)
    assert logits.dtype == torch.float32
    assert torch.allclose(torch.sigmoid(logits.double()), task.posterior(x), atol=1e-6)


def test_splits_are_deterministic_distinct_and_ignore_global_randomness():
    task = RarePositives()
    torch.manual_seed(0)
    a = task.split("val", 500)
    torch.manual_seed(1)
    b = task.split("val", 500)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    train, test = task.split("train", 500), task.split("test", 500)
    assert not torch.equal(a[0], train[0]) and not torch.equal(a[0], test[0])
    assert not torch.equal(a[0], RarePositives(seed=1).split("val", 500)[0])
    with pytest.raises(AssertionError, match="split should be one of"):
        task.split("validation", 10)


def test_bad_parameters_are_refused():
    with pytest.raises(AssertionError, match="grow with the number of alarms"):
        RarePositives(positive_rates=(0.5, 0.2, 0.6, 0.9))
    with pytest.raises(AssertionError, match="sum to 1"):
        RarePositives(level_probs=(0.5, 0.2, 0.2, 0.2))
    with pytest.raises(AssertionError, match="cannot hold"):
        RarePositives(seq_len=2)


def test_metric_curves_draws_each_metric_and_its_optimum_in_one_colour():
    import matplotlib.pyplot as plt

    from transformer_debug.plots import metric_curves

    fig, ax = plt.subplots()
    out = metric_curves({"accuracy": [0.8, 0.9], "f1": [0.1, 0.5]}, {"accuracy": 0.93},
                        steps=[10, 20], ax=ax, title="t")
    assert out is fig
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves, one optimum (f1 has none here)
    assert list(lines[0].get_xdata()) == [10, 20]
    assert lines[1].get_color() == lines[0].get_color() and lines[1].get_ydata()[0] == 0.93
    assert ax.get_title() == "t"
    plt.close(fig)


def test_bayes_classifier_returns_the_posterior_log_odds_on_any_batch():
    from transformer_debug.tasks import BayesClassifier

    task = RarePositives()
    x, _ = task.split("test", 300)
    model = BayesClassifier(task)
    assert list(model.parameters()) == []
    out = model(x)
    assert out.shape == (300,) and out.dtype == torch.float32
    assert torch.equal(out, task.bayes_logits(x))
    assert torch.equal(model.train()(x), model.eval()(x))  # nothing random
