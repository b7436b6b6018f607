import itertools
import math

import pytest
import torch

from transformer_debug.tasks import ABeforeB, MarkovLanguage, seeded

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead


@pytest.fixture(scope="module")
def lang():
    return MarkovLanguage()


@pytest.fixture(scope="module")
def big_sample(lang):
    return lang.sample(4096, seeded(123))  # (4096, 65)


# ---------------------------------------------------------------- seeded

def test_seeded_returns_reproducible_cpu_generator():
    g1, g2 = seeded(7), seeded(7)
    assert isinstance(g1, torch.Generator) and g1.device.type == "cpu"
    assert torch.equal(torch.rand(5, generator=g1), torch.rand(5, generator=g2))


def test_tasks_do_not_touch_global_rng(lang):
    state = torch.get_rng_state()
    MarkovLanguage(seed=3).batch(8, seeded(0))
    lang.nll(lang.sample(4, seeded(1)))
    ABeforeB().batch(8, seeded(0))
    assert torch.equal(state, torch.get_rng_state())


# ---------------------------------------------------------------- MarkovLanguage: the chain

@pytest.mark.parametrize("V,k", [(32, 4), (8, 1), (8, 8), (5, 3)])
def test_transition_rows(V, k):
    P = MarkovLanguage(vocab_size=V, n_successors=k, seed=1).transition
    assert P.shape == (V, V) and P.dtype == torch.float64
    assert torch.allclose(P.sum(1), torch.ones(V, dtype=torch.float64))
    assert ((P > 0).sum(1) == k).all()
    assert (P >= 0).all()
    assert (P[torch.arange(V), (torch.arange(V) + 1) % V] > 0).all()


def test_stationary_is_stationary(lang):
    pi = lang.stationary
    assert pi.shape == (lang.vocab_size,) and pi.dtype == torch.float64
    assert (pi > 0).all()
    assert math.isclose(pi.sum().item(), 1.0, abs_tol=1e-12)
    assert torch.allclose(pi @ lang.transition, pi, atol=1e-12)


def test_same_seed_same_task_and_batches_different_seed_differs():
    a, b, c = MarkovLanguage(seed=5), MarkovLanguage(seed=5), MarkovLanguage(seed=6)
    assert torch.equal(a.transition, b.transition) and torch.equal(a.stationary, b.stationary)
    assert not torch.equal(a.transition, c.transition)
    xa, ya = a.batch(16, seeded(0))
    xb, yb = b.batch(16, seeded(0))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    xc, _ = a.batch(16, seeded(1))
    assert not torch.equal(xa, xc)


def test_batch_shapes_and_shift(lang):
    x, y = lang.batch(10, seeded(0))
    assert x.shape == y.shape == (10, lang.seq_len)
    assert x.dtype == y.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert x.min() >= 0 and max(x.max(), y.max()) < lang.vocab_size


@pytest.mark.parametrize("lag", [1, 2, 3])
def test_samples_only_take_allowed_transitions(lag):
    m = MarkovLanguage(lag=lag, seq_len=20, seed=2)
    seq = m.sample(512, seeded(0))
    assert seq.shape == (512, 21)
    assert (m.transition[seq[:, :-lag], seq[:, lag:]] > 0).all()


def test_sample_frequencies_match_the_chain(lang, big_sample):
    V, lag = lang.vocab_size, lang.lag
    prev, nxt = big_sample[:, :-lag].reshape(-1), big_sample[:, lag:].reshape(-1)
    counts = torch.zeros(V, V, dtype=torch.float64).index_put_((prev, nxt), torch.ones(len(prev), dtype=torch.float64), accumulate=True)
    visits = counts.sum(1, keepdim=True)  # (V, 1); rare tokens have few, so test z-scores
    P = lang.transition
    z = (counts / visits - P) / (P * (1 - P) / visits).sqrt()
    allowed = (P > 0) & (P < 1)
    assert z[allowed].abs().max() < 5  # binomial noise over ~128 entries: max |z| is about 3
    # every position, the first lag included, is distributed as pi
    for t in (0, lag - 1, lang.seq_len):
        freq = torch.bincount(big_sample[:, t], minlength=V).double() / len(big_sample)
        assert (freq - lang.stationary).abs().max() < 0.03


def test_the_previous_token_alone_is_not_enough(lang, big_sample):
    # with lag 2, x_{t-1} is nearly uninformative: its conditional entropy stays far above the floor
    V = lang.vocab_size
    prev, nxt = big_sample[:, :-1].reshape(-1), big_sample[:, 1:].reshape(-1)
    counts = torch.zeros(V, V, dtype=torch.float64).index_put_((prev, nxt), torch.ones(len(prev), dtype=torch.float64), accumulate=True)
    p = counts / counts.sum()
    h_next_given_prev = -(torch.special.xlogy(p, p).sum() - torch.special.xlogy(p.sum(1), p.sum(1)).sum()).item()
    assert h_next_given_prev > lang.entropy_floor + 1.0


# ---------------------------------------------------------------- MarkovLanguage: the floor

def test_entropy_ordering(lang):
    assert lang.conditional_entropy < lang.entropy_floor < lang.unigram_entropy < math.log(lang.vocab_size)
    # lag 2 and 64 targets: one unigram target (x_1), 63 conditional ones
    expected = (lang.unigram_entropy + 63 * lang.conditional_entropy) / 64
    assert math.isclose(lang.entropy_floor, expected, rel_tol=1e-12)


@pytest.mark.parametrize("lag", [1, 2, 3])
def test_floor_and_nll_by_exhaustive_enumeration(lag):
    m = MarkovLanguage(vocab_size=4, n_successors=2, lag=lag, seq_len=3, seed=4)
    pi, P, T = m.stationary, m.transition, m.seq_len
    expected, total_p = 0.0, 0.0
    for s in itertools.product(range(4), repeat=T + 1):
        p = math.prod(pi[s[t]].item() if t < lag else P[s[t - lag], s[t]].item() for t in range(T + 1))
        total_p += p
        if p > 0:
            nll = m.nll(torch.tensor([s]))
            # nll leaves out x_0, which is never a target
            assert math.isclose(nll * T, -math.log(p) + math.log(pi[s[0]].item()), rel_tol=1e-9)
            expected += p * nll
    assert math.isclose(total_p, 1.0, rel_tol=1e-9)
    assert math.isclose(expected, m.entropy_floor, rel_tol=1e-9)


def test_nll_of_large_sample_is_close_to_floor(lang, big_sample):
    # 4096 x 64 targets: the law of large numbers puts the sample mean within a few thousandths
    assert abs(lang.nll(big_sample) - lang.entropy_floor) < 0.02


def test_corrupted_sequences_score_worse(lang, big_sample):
    seq = big_sample[:64].clone()
    base = lang.nll(seq)
    # an impossible successor: probability 0, infinite loss
    t = 10
    impossible = (lang.transition[seq[0, t - lang.lag]] == 0).nonzero()[0].item()
    broken = seq.clone()
    broken[0, t] = impossible
    assert lang.nll(broken) == math.inf
    # reversing keeps every token but breaks the order: much worse, possibly impossible
    assert lang.nll(seq.flip(1)) > base + 0.5


def test_repr_mentions_floor(lang):
    r = repr(lang)
    assert r.startswith("MarkovLanguage(") and f"{lang.entropy_floor:.3f}" in r


# ---------------------------------------------------------------- ABeforeB

def test_abeforeb_rows_and_labels():
    task = ABeforeB()
    x, y = task.batch(2000, seeded(0))
    assert x.shape == (2000, task.seq_len) and y.shape == (2000,)
    assert x.dtype == y.dtype == torch.long
    assert ((x == task.A).sum(1) == 1).all() and ((x == task.B).sum(1) == 1).all()
    assert x.min() >= 0 and x.max() < task.vocab_size
    pos_a, pos_b = (x == task.A).int().argmax(1), (x == task.B).int().argmax(1)
    assert torch.equal(y, (pos_a < pos_b).long())
    assert task.chance_accuracy == 0.5 and task.best_accuracy == 1.0


def test_abeforeb_is_balanced_and_only_order_is_informative():
    task = ABeforeB(vocab_size=8, seq_len=16)
    x, y = task.batch(20000, seeded(1))
    assert abs(y.float().mean().item() - 0.5) < 0.02
    # the token histogram of a row has the same distribution for both labels
    hist = torch.nn.functional.one_hot(x, task.vocab_size).sum(1)  # (N, V) counts per row
    h1, h0 = hist[y == 1].double().mean(0), hist[y == 0].double().mean(0)
    assert torch.equal(hist[:, :2], torch.ones_like(hist[:, :2]))
    assert (h1 - h0).abs().max() < 0.1


def test_abeforeb_reproducible():
    task = ABeforeB()
    a, b, c = task.batch(32, seeded(3)), task.batch(32, seeded(3)), task.batch(32, seeded(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
