"""Library additions for notebook 06 (data): each probe must tell a right answer from a wrong one."""
import math

import pytest
import torch
import torch.nn.functional as F

from transformer_debug import probes
from transformer_debug.tasks import ABeforeB, seeded


def masked_loss(logits, targets):  # ignores targets of -100, like F.cross_entropy's default
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def test_pad_sensitivity_is_zero_for_a_loss_that_ignores_pads_and_positive_otherwise():
    g = seeded(0)
    logits, targets = torch.randn(3, 5, 7, generator=g), torch.randint(7, (3, 5), generator=g)
    pad = torch.arange(5) >= torch.tensor([5, 3, 1])[:, None]
    ignored = targets.masked_fill(pad, -100)
    assert probes.pad_sensitivity(masked_loss, logits, ignored, pad) == 0
    assert probes.pad_sensitivity(masked_loss, logits, targets, pad) > 0.1  # pads counted
    before = logits.clone()
    probes.pad_sensitivity(masked_loss, logits, targets, pad)
    assert torch.equal(logits, before)  # the caller's logits are left alone


def test_pad_sensitivity_reports_a_non_finite_loss_as_infinite_and_checks_shapes():
    logits, targets = torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long)
    pad = torch.zeros(2, 4, dtype=torch.bool)
    pad[:, -1] = True
    assert math.isinf(probes.pad_sensitivity(lambda lg, t: lg.sum() * math.nan, logits, targets, pad))
    with pytest.raises(AssertionError, match=r"pad \(2, 3\)"):
        probes.pad_sensitivity(masked_loss, logits, targets, pad[:, :3])


def test_bag_of_tokens_accuracy_is_at_chance_on_order_only_labels_and_high_on_a_leak():
    x, y = ABeforeB(vocab_size=8, seq_len=12).batch(400, seeded(1))
    clean = probes.bag_of_tokens_accuracy(x, y)
    assert 0.35 < clean < 0.65
    leaky = probes.bag_of_tokens_accuracy(torch.cat([y[:, None] + 8, x], 1), y)  # the label as a token of its own
    assert leaky > 0.95
    assert probes.bag_of_tokens_accuracy(x, y) == clean  # seeded folds: the same number twice


def test_bag_of_tokens_accuracy_rejects_ids_outside_the_vocabulary():
    x, y = torch.tensor([[0, 1], [2, 3]]), torch.tensor([0, 1])
    with pytest.raises(AssertionError, match="outside vocab_size=3"):
        probes.bag_of_tokens_accuracy(x, y, vocab_size=3)
    with pytest.raises(AssertionError, match=">= 0"):
        probes.bag_of_tokens_accuracy(x - 1, y)


def test_overlap_counts_validation_rows_that_occur_in_training():
    train = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    val = torch.tensor([[4, 5, 6], [6, 5, 5], [1, 2, 3], [1, 2, 3]])
    assert probes.overlap(train, val) == 3  # a row repeated in val counts each time
    assert probes.overlap(train, val.flip(1)) == 0  # order matters: a sequence, not a bag
    assert probes.overlap(train[:, :2].T.contiguous().T, train[:, :2]) == 3  # memory layout does not matter
    assert probes.overlap(train, train.new_zeros(0, 3)) == 0
