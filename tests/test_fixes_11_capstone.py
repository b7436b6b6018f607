"""Hidden tests of 11_capstone accept any correct fix, and a plausible wrong fix loses points.

Each correct fix starts from the pipeline students receive (all seven bugs planted) and repairs it
differently from the source notebook: narrow or roll-then-drop for the targets, reshape or a
transpose for the loss, is_causal or an additive 0/-inf mask, the position table sliced or indexed
by expanded positions, a scheduler factor written another way, a logit margin or the last column as
the ROC score, and the module-level generator reseeded per run. Every graded cell must pass on each
of them, and so must the author's model answer to "your test". The wrong fix is what a hurried
student might write: it passes the visible tests and must lose hidden points.
"""
import functools
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, answer_cell, graded_cells, points_lost, run_graded_cells

BUGS = {"capstone-loss-shape", "capstone-lr-twice", "capstone-mask-dtype", "capstone-pos-lookup",
        "capstone-auc-column", "capstone-target-roll", "capstone-data-rng"}
NAMES = ("Config", "lm_collate", "batches", "SelfAttention", "Block", "Transformer", "loss_fn", "lr_factor",
         "make_optimizer", "classification_metrics", "evaluate", "train", "MIN_LR_FACTOR")


def released():
    """The pipeline cell as students get it, run in its own namespace (its functions share it)."""
    namespace = {}
    exec(answer_cell("11_capstone", "pipeline", bugs=BUGS), namespace)
    return namespace


def author():
    namespace = {}
    exec(answer_cell("11_capstone", "pipeline"), namespace)
    return {name: namespace[name] for name in NAMES}


def fix_with_is_causal():
    ns = released()
    buggy_train, buggy_make_optimizer = ns["train"], ns["make_optimizer"]

    def lm_collate(seq):
        L = seq.size(1) - 1
        return seq.narrow(1, 0, L), seq.narrow(1, 1, L)

    def loss_fn(logits, targets):
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))

    class SelfAttention(ns["SelfAttention"]):
        def forward(self, x, causal):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=-1)
            q, k, v = (t.view(B, T, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            return self.proj(y.transpose(1, 2).reshape(B, T, C))

    class Transformer(ns["Transformer"]):
        def forward(self, idx):
            x = self.tok(idx) + self.pos.weight[:idx.size(1)]
            for block in self.blocks:
                x = block(x, self.cfg.causal)
            x = self.ln_f(x)
            return self.head(x.mean(1)) if self.cfg.n_classes else self.head(x)

    def make_optimizer(model, cfg):
        optimizer, _ = buggy_make_optimizer(model, cfg)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(ns["lr_factor"], cfg=cfg))

    def classification_metrics(logits, labels):
        from sklearn.metrics import f1_score, roc_auc_score
        margin = (logits[:, 1] - logits[:, 0]).float()  # ranks like the probability of class 1
        y = labels.numpy()
        return {"accuracy": ((margin > 0).long() == labels).float().mean().item(),
                "f1": f1_score(y, (margin > 0).long().numpy(), zero_division=0),
                "roc_auc": roc_auc_score(y, margin.numpy())}

    def train(cfg, *args, **kwargs):
        ns["data_rng"].manual_seed(cfg.seed)  # reseed the shared generator at the start of every run
        return buggy_train(cfg, *args, **kwargs)

    ns.update(lm_collate=lm_collate, loss_fn=loss_fn, SelfAttention=SelfAttention, Transformer=Transformer,
              make_optimizer=make_optimizer, classification_metrics=classification_metrics, train=train)
    return {name: ns[name] for name in NAMES}


def fix_with_additive_mask():
    ns = released()
    buggy_train, buggy_make_optimizer = ns["train"], ns["make_optimizer"]
    buggy_metrics = ns["classification_metrics"]

    def lm_collate(seq):
        return seq[:, :-1], seq.roll(-1, dims=1)[:, :-1]  # roll, then drop the wrapped column

    def loss_fn(logits, targets):
        return F.cross_entropy(logits.transpose(1, -1), targets)  # classes on dim 1, as torch wants

    class SelfAttention(ns["SelfAttention"]):
        def __init__(self, cfg):
            super().__init__(cfg)
            allowed = torch.ones(cfg.max_len, cfg.max_len, dtype=torch.bool).tril()
            self.causal_mask = torch.zeros(cfg.max_len, cfg.max_len).masked_fill(~allowed, -math.inf)

    class Transformer(ns["Transformer"]):
        def forward(self, idx):
            B, T = idx.shape
            x = self.tok(idx) + self.pos(torch.arange(T).expand(B, T))
            for block in self.blocks:
                x = block(x, self.cfg.causal)
            x = self.ln_f(x)
            return self.head(x.mean(1)) if self.cfg.n_classes else self.head(x)

    def make_optimizer(model, cfg):
        optimizer, _ = buggy_make_optimizer(model, cfg)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cfg.lr * ns["lr_factor"](s, cfg) / cfg.lr)

    def classification_metrics(logits, labels):
        return buggy_metrics(logits.flip(-1), labels) | {
            "accuracy": (logits.argmax(-1) == labels).float().mean().item(),
            "f1": buggy_metrics(logits, labels)["f1"]}  # flipped columns: the bug's score is class 1's

    def train(cfg, *args, **kwargs):
        ns["data_rng"] = torch.Generator().manual_seed(cfg.seed)
        return buggy_train(cfg, *args, **kwargs)

    ns.update(lm_collate=lm_collate, loss_fn=loss_fn, SelfAttention=SelfAttention, Transformer=Transformer,
              make_optimizer=make_optimizer, classification_metrics=classification_metrics, train=train)
    return {name: ns[name] for name in NAMES}


FIXES = {"is_causal": fix_with_is_causal, "additive_mask": fix_with_additive_mask}


@pytest.mark.parametrize("name", FIXES)
def test_11_hidden_tests_pass_on_other_correct_fixes(name, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "11_capstone")  # grading finds source/ from here
    run_graded_cells("11_capstone", FIXES[name](), your_test="test_pipeline")


def test_11_the_fixes_really_differ_from_the_author_and_agree_with_it():
    ref = author()
    g = torch.Generator().manual_seed(0)
    seq = torch.randint(30, (4, 9), generator=g)
    logits, y = torch.randn(4, 8, 30, generator=g), seq[:, 1:]
    for make in FIXES.values():
        fix = make()
        assert fix["lm_collate"] is not ref["lm_collate"] and fix["loss_fn"] is not ref["loss_fn"]
        for mine, theirs in zip(fix["lm_collate"](seq), ref["lm_collate"](seq)):
            assert torch.equal(mine, theirs)
        assert abs(float(fix["loss_fn"](logits, y)) - float(ref["loss_fn"](logits, y))) < 1e-6


def test_11_roc_auc_from_decisions_passes_the_visible_tests_but_loses_hidden_points(monkeypatch):
    """"Fixing" ROC-AUC by scoring the predicted class gives 1 for a perfect classifier (the visible
    test passes), but AUC from hard decisions throws the ranking away: hidden-metrics fails."""
    monkeypatch.chdir(ROOT / "release" / "11_capstone")
    fix = author()
    right = fix["classification_metrics"]

    def classification_metrics(logits, labels):
        from sklearn.metrics import roc_auc_score
        return right(logits, labels) | {"roc_auc": roc_auc_score(labels.numpy(), logits.argmax(-1).numpy())}

    fix["classification_metrics"] = classification_metrics
    lost = points_lost("11_capstone", fix)
    assert not [cell for cell in lost if cell.startswith("visible-")], lost
    assert "hidden-metrics" in lost, lost
