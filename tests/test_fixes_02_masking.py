"""Hidden tests accept any correct fix of notebook 02 (masking), not only the author's.

Each fix below rewrites every function that carries a planted bug with other torch ops or
another order of operations: index comparisons instead of tril, unsqueeze or view instead of
None-indexing, where or an additive mask instead of masked_fill, a large finite fill value
instead of -inf, ignore_index or boolean indexing instead of a weighted sum. The rest of the
answer cell (MaskedSelfAttention) is the author's, and it calls the replaced functions. Every
graded cell must pass on each fix, and so must the author's model answer to "your test".
"""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, answer_cell, points_lost, run_graded_cells

NAMES = ("causal_mask", "attention_mask", "attend", "MaskedSelfAttention", "lm_loss")


def masking_02(name, **replacements):
    """The author's answer cell with some functions replaced; the names the tests use."""
    namespace = {}
    exec(answer_cell("02_masking", "masking-code"), namespace)
    namespace.update(replacements)  # MaskedSelfAttention looks them up in this namespace
    fix = {n: namespace[n] for n in NAMES}
    fix["MaskedSelfAttention"] = type(name, (namespace["MaskedSelfAttention"],), {})
    return fix


def compare_indices():
    def causal_mask(T, device=None):
        i = torch.arange(T, device=device)
        return i.view(T, 1) >= i.view(1, T)  # query index >= key index

    def attention_mask(real):
        B, T = real.shape
        keys = real.view(B, 1, 1, T).expand(B, 1, T, T)
        return keys.logical_and(causal_mask(T, real.device).unsqueeze(0).unsqueeze(0))

    def attend(q, k, v, mask):
        scores = torch.einsum("bhtd,bhsd->bhts", q, k) * q.size(-1) ** -0.5
        weights = F.softmax(torch.where(mask, scores, torch.tensor(float("-inf"))), dim=3)
        return torch.einsum("bhts,bhsd->bhtd", weights, v)

    def lm_loss(logits, targets, real):
        return F.cross_entropy(logits[real], targets[real])

    return masking_02("CompareIndices", causal_mask=causal_mask, attention_mask=attention_mask,
                      attend=attend, lm_loss=lm_loss)


def triu_and_additive():
    def causal_mask(T, device=None):
        return ~torch.ones(T, T, dtype=torch.bool, device=device).triu(1)  # not strictly in the future

    def attention_mask(real):
        T = real.size(-1)
        return causal_mask(T, real.device)[None, None] * real.unsqueeze(1).unsqueeze(1)

    def attend(q, k, v, mask):
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, torch.finfo(q.dtype).min)
        weights = torch.softmax(q @ k.mT / math.sqrt(k.shape[-1]) + bias, dim=-1)
        return torch.matmul(weights, v)

    def lm_loss(logits, targets, real):
        ignored = targets.masked_fill(~real, -100)
        return F.cross_entropy(logits.flatten(0, 1), ignored.flatten(), ignore_index=-100)

    return masking_02("TriuAdditive", causal_mask=causal_mask, attention_mask=attention_mask,
                      attend=attend, lm_loss=lm_loss)


def logsumexp_by_hand():
    def causal_mask(T, device=None):
        return torch.tril(torch.full((T, T), True, device=device), diagonal=0)

    def attend(q, k, v, mask):
        scores = (q / math.sqrt(q.size(-1))) @ k.transpose(2, 3)
        scores = scores.masked_fill(mask.logical_not(), -math.inf)
        weights = (scores - scores.logsumexp(-1, keepdim=True)).exp()
        return weights @ v

    def lm_loss(logits, targets, real):
        logp = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
        return -(logp * real).sum() / real.sum()

    return masking_02("LogSumExp", causal_mask=causal_mask, attend=attend, lm_loss=lm_loss)


@pytest.mark.parametrize("fix", [compare_indices(), triu_and_additive(), logsumexp_by_hand()],
                         ids=lambda f: f["MaskedSelfAttention"].__name__)
def test_02_hidden_tests_pass_on_other_correct_fixes(fix, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "02_masking")  # grading finds source/ from here
    run_graded_cells("02_masking", fix, your_test="test_masking")


def test_02_the_fixes_really_differ_from_the_author_and_agree_with_each_other():
    torch.manual_seed(0)
    real = torch.arange(6) < torch.tensor([6, 3, 1])[:, None]
    q, k, v = torch.randn(3, 3, 2, 6, 4).unbind(0)
    logits, targets = torch.randn(3, 6, 5), torch.randint(5, (3, 6))
    fixes = [compare_indices(), triu_and_additive(), logsumexp_by_hand()]
    author = masking_02("Author")
    for fix in fixes:
        assert fix["attend"] is not author["attend"] and fix["lm_loss"] is not author["lm_loss"]
        assert torch.equal(fix["attention_mask"](real), author["attention_mask"](real))
        mask = fix["attention_mask"](real)
        assert torch.allclose(fix["attend"](q, k, v, mask), author["attend"](q, k, v, mask), atol=1e-6)
        assert torch.allclose(fix["lm_loss"](logits, targets, real), author["lm_loss"](logits, targets, real))


def test_02_a_plausible_wrong_fix_loses_points():
    """Summing the real targets' losses and dividing by the number of sequences (a per-sequence
    loss) passes the visible test, which only appends pads; it is not the mean over real targets."""
    def lm_loss(logits, targets, real):
        loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        return (loss * real).sum() / real.size(0)

    assert points_lost("02_masking", masking_02("PerSequence", lm_loss=lm_loss)) == {"hidden-loss": 2}
