"""
Synthetic tasks whose best possible result is known exactly.

A real corpus never tells you how good a loss is. These tasks do: MarkovLanguage
knows the lowest cross-entropy any model can reach, ABeforeB has chance 50%
and a perfect score of 100%, and RarePositives knows the best accuracy, F1 and
ROC-AUC that any classifier can reach on its noisy labels. A model that stalls far from those numbers has a bug,
not a data problem. Nothing is downloaded and nothing touches global random
state: every draw takes an explicit torch.Generator, so runs are reproducible.
"""

import math

import torch

__all__ = ["seeded", "MarkovLanguage", "ABeforeB", "RarePositives", "BayesClassifier",
           "variable_length", "target_nll"]


def seeded(seed):
    """A fresh CPU generator; pass it to every sampling call."""
    return torch.Generator().manual_seed(seed)


def _entropy(p):
    """Entropy in nats along the last dim, with 0 log 0 = 0."""
    return -torch.special.xlogy(p, p).sum(-1)


class MarkovLanguage:
    """
    A lag-k Markov chain "language": token x_t depends only on x_{t-lag}.

    With lag >= 2 the previous token says nothing, so a model must attend to the
    right relative position to beat the unigram loss; a broken positional
    encoding or causal mask shows up as a loss stuck near unigram_entropy.
    Each token has n_successors possible next tokens with Dirichlet(1) weights;
    one of them is always (i+1) % V, which makes the chain irreducible and the
    stationary distribution unique.
    """

    def __init__(self, vocab_size=32, n_successors=4, lag=2, seq_len=64, seed=0):
        assert 1 <= n_successors <= vocab_size and lag >= 1 and seq_len >= 1
        self.vocab_size, self.n_successors = vocab_size, n_successors
        self.lag, self.seq_len, self.seed = lag, seq_len, seed
        V, g = vocab_size, seeded(seed)
        # successors: (i+1) % V is forced to the top, the rest are a random choice
        scores = torch.rand(V, V, generator=g, dtype=torch.float64)  # (V, V)
        scores[torch.arange(V), (torch.arange(V) + 1) % V] = 2.0
        succ = scores.topk(n_successors, dim=1).indices  # (V, n_successors)
        # Dirichlet(1) weights = normalised Exp(1) draws
        w = torch.empty(V, n_successors, dtype=torch.float64).exponential_(generator=g)
        w = w.clamp_min(torch.finfo(torch.float64).tiny)
        P = torch.zeros(V, V, dtype=torch.float64).scatter_(1, succ, w / w.sum(1, keepdim=True))
        self.transition = P  # (V, V), row i = distribution of x_t given x_{t-lag} = i
        # stationary pi solves pi P = pi, sum(pi) = 1; swap one redundant equation for the sum
        A = P.T - torch.eye(V, dtype=torch.float64)
        A[-1] = 1.0
        b = torch.zeros(V, dtype=torch.float64)
        b[-1] = 1.0
        pi = torch.linalg.solve(A, b)  # (V,)
        assert (pi > 0).all() and torch.allclose(pi @ P, pi, atol=1e-12)
        self.stationary = pi

    @property
    def unigram_entropy(self):
        """H(pi): best loss without context, nats per token."""
        return _entropy(self.stationary).item()

    @property
    def conditional_entropy(self):
        """H(x_t | x_{t-lag}) = sum_i pi_i H(P_i): best loss with the right context."""
        return (self.stationary * _entropy(self.transition)).sum().item()

    def _n_unigram_targets(self, seq_len):
        # targets are x_1..x_T; those with t < lag have no x_{t-lag} to condition on
        return min(self.lag - 1, seq_len)

    @property
    def entropy_floor(self):
        """Expected loss of the true model, averaged over the seq_len predicted positions."""
        T, k = self.seq_len, self._n_unigram_targets(self.seq_len)
        return (k * self.unigram_entropy + (T - k) * self.conditional_entropy) / T

    def sample(self, n, generator):
        """n independent sequences, (n, seq_len + 1): the first lag tokens ~ pi, then the chain."""
        L = self.seq_len + 1
        seq = torch.empty(n, L, dtype=torch.long)
        k = min(self.lag, L)
        seq[:, :k] = torch.multinomial(self.stationary, n * k, replacement=True,
                                       generator=generator).view(n, k)
        for t in range(k, L):
            probs = self.transition[seq[:, t - self.lag]]  # (n, V)
            seq[:, t] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return seq

    def batch(self, batch_size, generator):
        """Inputs and next-token targets, both (batch_size, seq_len)."""
        seq = self.sample(batch_size, generator)
        return seq[:, :-1], seq[:, 1:]

    def nll(self, seq):
        """
        Exact average negative log-likelihood (nats per predicted token) of seq, a
        LongTensor (n, L + 1), under the true model; inf if seq is impossible.
        Averaged like entropy_floor, so a model's loss on seq compares to it directly.
        """
        assert seq.dim() == 2 and seq.size(1) >= 2
        k = self._n_unigram_targets(seq.size(1) - 1)
        logp_uni = self.stationary.log()[seq[:, 1:1 + k]]  # (n, k)
        logp_cond = self.transition.log()[seq[:, :-self.lag], seq[:, self.lag:]]  # (n, L + 1 - lag)
        total = logp_uni.sum() + logp_cond.sum()
        return (-total / (seq.size(0) * (seq.size(1) - 1))).item()

    def __repr__(self):
        return (f"MarkovLanguage(vocab_size={self.vocab_size}, n_successors={self.n_successors}, "
                f"lag={self.lag}, seq_len={self.seq_len}, seed={self.seed}, "
                f"floor={self.entropy_floor:.3f}, unigram={self.unigram_entropy:.3f}, "
                f"ln V={math.log(self.vocab_size):.3f} nats)")


class ABeforeB:
    """
    Binary classification: does token A come before token B?

    A and B appear exactly once each, at two distinct uniform positions; every
    other position is a filler token from 2..V-1. The bag of tokens is the same
    for both labels, so only order carries information: a model without working
    positions (or with a leaky/broken mask in a causal classifier) is stuck at 50%.
    """

    A, B = 0, 1
    chance_accuracy = 0.5
    best_accuracy = 1.0

    def __init__(self, vocab_size=16, seq_len=32):
        assert vocab_size >= 3, "need A, B and at least one filler token"
        assert seq_len >= 2, "A and B need two positions"
        self.vocab_size, self.seq_len = vocab_size, seq_len  # no random parameters: nothing to seed

    def batch(self, batch_size, generator):
        """x (batch_size, seq_len) tokens, y (batch_size,) with 1 iff A precedes B."""
        x = torch.randint(2, self.vocab_size, (batch_size, self.seq_len), generator=generator)
        # (a, b) uniform over ordered pairs of distinct positions, so P(a < b) = 1/2 exactly
        a = torch.randint(0, self.seq_len, (batch_size,), generator=generator)
        b = (a + torch.randint(1, self.seq_len, (batch_size,), generator=generator)) % self.seq_len
        rows = torch.arange(batch_size)
        x[rows, a], x[rows, b] = self.A, self.B
        y = (a < b).long()
        return x, y

    def __repr__(self):
        return f"ABeforeB(vocab_size={self.vocab_size}, seq_len={self.seq_len}, A={self.A}, B={self.B})"


class RarePositives:
    """
    Binary classification with rare positives and label noise of known rate.

    Each sequence holds k alarm tokens (token 0, at random positions; k = 0..K) among
    filler tokens 1..V-1. The level k has probability level_probs[k], and the label is
    positive with probability positive_rates[k], whatever else the sequence holds: the
    label is noisy, and no model can know more than k. So the best possible classifier
    (the Bayes classifier) scores P(y = 1 | x) = positive_rates[k], and its accuracy,
    F1 and ROC-AUC have closed forms. With the defaults about 10% of labels are
    positive: "always negative" scores 90% accuracy and F1 0; the Bayes classifier
    scores about 94.5%, 0.72 and 0.93.

    Metrics here are population values (an infinite validation set); a finite sample's
    own values scatter around them, so compare a model with the Bayes classifier scored
    on the same examples (`posterior`).
    """

    ALARM = 0
    splits = ("train", "val", "test")

    def __init__(self, vocab_size=4, seq_len=8, level_probs=(0.80, 0.10, 0.06, 0.04),
                 positive_rates=(0.01, 0.20, 0.60, 0.92), seed=0):
        assert vocab_size >= 2, "need the alarm token and at least one filler token"
        assert len(level_probs) == len(positive_rates) >= 2, "one positive rate per alarm count, two at least"
        assert seq_len >= len(level_probs) - 1, f"seq_len={seq_len} cannot hold {len(level_probs) - 1} alarms"
        probs = torch.tensor(level_probs, dtype=torch.float64)
        rates = torch.tensor(positive_rates, dtype=torch.float64)
        assert (probs > 0).all() and abs(probs.sum().item() - 1) < 1e-9, "level_probs must be positive and sum to 1"
        assert ((rates > 0) & (rates < 1)).all() and (rates.diff() > 0).all(), \
            "positive_rates must lie in (0, 1) and grow with the number of alarms"
        self.vocab_size, self.seq_len, self.seed = vocab_size, seq_len, seed
        self.n_classes = 2
        self.level_probs, self.positive_rates = probs, rates  # (K + 1,) each

    @property
    def positive_rate(self):
        """P(y = 1): the share of positive labels."""
        return (self.level_probs * self.positive_rates).sum().item()

    def sample(self, n, generator):
        """x (n, seq_len) tokens and y (n,) labels in {0, 1}, drawn with `generator`."""
        k = torch.multinomial(self.level_probs, n, replacement=True, generator=generator)  # (n,) alarm counts
        x = torch.randint(1, self.vocab_size, (n, self.seq_len), generator=generator)
        # the k alarms go to the first k of a random order of positions
        order = torch.rand(n, self.seq_len, generator=generator).argsort(dim=1)  # (n, seq_len)
        x[order < k[:, None]] = self.ALARM
        y = (torch.rand(n, generator=generator, dtype=torch.float64) < self.positive_rates[k]).long()
        return x, y

    batch = sample  # fresh training batches, like the other tasks

    def split(self, name, n):
        """A fixed data set: the same (x, y) for the same task seed, split name and n."""
        assert name in self.splits, f"split should be one of {self.splits}, got {name!r}"
        return self.sample(n, seeded(1000 * self.seed + self.splits.index(name) + 1))

    def levels(self, x):
        """(n, seq_len) tokens -> (n,) the number of alarm tokens in each sequence."""
        return (x == self.ALARM).sum(dim=1)

    def posterior(self, x):
        """(n, seq_len) tokens -> (n,) P(y = 1 | x) in float64: the Bayes classifier's score."""
        k = self.levels(x)
        assert k.max().item() < len(self.positive_rates), "more alarms than this task ever draws"
        return self.positive_rates[k]

    def bayes_logits(self, x):
        """(n, seq_len) tokens -> (n,) float32 log-odds of the posterior: a perfect model's logits."""
        p = self.posterior(x)
        return (p.log() - (-p).log1p()).float()

    def _tables(self):
        # per level: P(level, y = 1), P(level, y = 0); levels are sorted by their posterior
        return self.level_probs * self.positive_rates, self.level_probs * (1 - self.positive_rates)

    def bayes_metrics(self, threshold=0.5):
        """Expected accuracy, F1 (of the positive class) and ROC-AUC of the Bayes classifier,
        which predicts positive where P(y = 1 | x) > threshold. Ties in the ROC count half."""
        pos, neg = self._tables()
        yes = self.positive_rates > threshold  # levels predicted positive
        tp, fp = pos[yes].sum().item(), neg[yes].sum().item()
        accuracy = tp + neg[~yes].sum().item()
        f1 = 2 * tp / (tp + fp + self.positive_rate) if tp + fp > 0 else 0.0
        a, b = pos / pos.sum(), neg / neg.sum()  # level distribution of positives, of negatives
        below = torch.cumsum(b, 0) - b           # P(a negative sits at a lower level)
        roc_auc = (a * below).sum().item() + 0.5 * (a * b).sum().item()
        return {"accuracy": accuracy, "f1": f1, "roc_auc": roc_auc}

    @property
    def best_f1(self):
        """(F1, threshold): the highest expected F1 any classifier reaches, and a posterior
        threshold that reaches it. For F1 that is not 0.5 but half the best F1 itself."""
        cuts = [0.0] + [(a + b) / 2 for a, b in zip(self.positive_rates[:-1].tolist(),
                                                    self.positive_rates[1:].tolist())]
        best = max(self.bayes_metrics(t)["f1"] for t in cuts)  # any other threshold repeats a cut
        return best, best / 2

    def __repr__(self):
        best = self.bayes_metrics()
        return (f"RarePositives(vocab_size={self.vocab_size}, seq_len={self.seq_len}, "
                f"alarm levels {len(self.level_probs)}, positives {self.positive_rate:.1%}, "
                f"best accuracy {best['accuracy']:.3f}, F1 {best['f1']:.3f}, ROC-AUC {best['roc_auc']:.3f})")


class BayesClassifier(torch.nn.Module):
    """The best possible model of a task that knows its own posterior (RarePositives):
    (B, T) tokens -> (B,) float32 logits, on the input's device. No parameters, no dropout:
    a reference that any metric code must score at the task's known optimum."""

    def __init__(self, task):
        super().__init__()
        self.task = task

    def forward(self, x):
        return self.task.bayes_logits(x.cpu()).to(x.device)


def variable_length(seq, generator, min_targets=1, pad_id=0, ignore_index=-100):
    """
    Right-padded inputs and next-token targets of random lengths, from seq (n, L + 1).

    Row i keeps its first k_i + 1 tokens, k_i uniform in [min_targets, L] (drawn with
    `generator`): inputs (n, L) hold x_0..x_{k-1} then pad_id, targets (n, L) hold
    x_1..x_k then ignore_index, so a loss with that ignore_index counts k_i tokens of row i.
    With a causal model, right padding never changes the logits at real positions.
    """
    assert seq.dim() == 2 and seq.size(1) >= 2, "seq should be (n, L + 1) tokens with L >= 1"
    n, L = seq.size(0), seq.size(1) - 1
    assert 1 <= min_targets <= L, f"min_targets={min_targets} should lie in [1, {L}]"
    lengths = torch.randint(min_targets, L + 1, (n,), generator=generator)  # (n,)
    real = torch.arange(L) < lengths[:, None]                              # (n, L)
    inputs = seq[:, :-1].masked_fill(~real, pad_id)
    targets = seq[:, 1:].masked_fill(~real, ignore_index)
    return inputs, targets


def target_nll(task, inputs, targets, ignore_index=-100):
    """
    Exact mean negative log-likelihood (nats per counted target) of `targets` under the
    true chain of `task`, a MarkovLanguage: the best loss any model can reach on them.

    inputs, targets: (n, L) as from variable_length (right padding, targets[t] = x_{t+1});
    a target whose condition x_{t+1-lag} lies before the sequence costs its unigram
    probability, as in MarkovLanguage.nll.
    """
    assert inputs.shape == targets.shape and inputs.dim() == 2
    counted = targets != ignore_index                                      # (n, L)
    assert counted.any(), "no target is counted"
    L, lag = targets.size(1), task.lag
    safe = targets.clamp_min(0)
    logp = task.stationary.log()[safe]                                     # unigram, (n, L)
    if L > lag - 1:  # targets t >= lag - 1 condition on inputs[t + 1 - lag]
        cond = task.transition.log()[inputs[:, :L - lag + 1], safe[:, lag - 1:]]
        logp = torch.cat([logp[:, :lag - 1], cond], 1)
    return (-logp[counted].sum() / counted.sum()).item()
