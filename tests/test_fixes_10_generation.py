"""Hidden tests of 10_generation accept any correct fix, and reject plausible wrong ones.

Each correct variant fixes the five planted bugs differently from the source notebook: a cache that
is always true (instead of an `is not None` test), concatenation along dim -2, a mask built on the
fly or taken with a diagonal offset, positions offset after arange, and a new cache per call instead
of a reset. Every autograded test cell must pass on each of them, and the author's model answer to
"your test" must too. Two plausible wrong fixes lose points.
"""
import math
import types

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, answer_cell, points_lost, run_graded_cells

ASSIGNMENT = "10_generation"


def solution_module(name: str) -> types.ModuleType:
    """The author's answer cell as a module (its dataclass needs one in sys.modules)."""
    import sys
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(answer_cell(ASSIGNMENT, "kv-code"), f"<{name}>", "exec", dont_inherit=True), module.__dict__)
    return module


def truthy_cache_onthefly_mask():
    """KVCache is always true (the attention's `if cache:` then works), cat along -2, the mask built
    for the newest T rows with a diagonal offset, positions offset after arange, a new cache per call."""
    m = solution_module("kv_fix_a")

    class KVCache(m.KVCache):
        def __bool__(self):
            return True

        def update(self, layer, k, v):
            if self.keys[layer] is not None:
                k, v = torch.cat((self.keys[layer], k), -2), torch.cat((self.values[layer], v), -2)
            self.keys[layer], self.values[layer] = k, v
            return k, v

    class CausalSelfAttention(m.CausalSelfAttention):
        def forward(self, x, cache=None):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=-1)
            q, k, v = (t.view(B, T, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
            if cache:
                k, v = cache.update(self.layer, k, v)
            S = k.size(2)
            allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            att = (q @ k.transpose(-2, -1) * k.size(-1) ** -0.5).masked_fill(~allowed, float("-inf"))
            y = att.softmax(-1) @ v
            return self.proj(y.transpose(1, 2).reshape(B, T, C))

    m.KVCache, m.CausalSelfAttention = KVCache, CausalSelfAttention

    class TinyLM(m.TinyLM):
        def forward(self, idx, cache=None):
            T = idx.size(1)
            past = len(cache) if cache is not None else 0
            x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device) + past)
            for block in self.blocks:
                x = block(x, cache)
            return self.head(self.ln_f(x))

    def generate(model, prompt, max_new_tokens, use_cache=True, temperature=0.0, generator=None):
        if use_cache:
            model.cache = KVCache(len(model.blocks))  # a new request, a new cache
        cache = model.cache if use_cache else None
        tokens, chosen = prompt, []
        with torch.no_grad():
            for _ in range(max_new_tokens):
                logits = model(tokens[:, len(cache):] if cache is not None else tokens, cache)[:, -1]
                chosen.append(logits)
                if temperature:
                    nxt = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator)
                else:
                    nxt = logits.argmax(-1, keepdim=True)
                tokens = torch.cat((tokens, nxt), 1)
        return tokens, torch.stack(chosen, 1)

    return dict(Config=m.Config, KVCache=KVCache, CausalSelfAttention=CausalSelfAttention, Block=m.Block,
                TinyLM=TinyLM, generate=generate)


def sdpa_narrow_explicit_prefill():
    """The attention through torch's kernel with an explicit boolean mask cut with narrow, positions
    from the cache's own counter, a prefill then single tokens, the reset inside `generate`'s set-up."""
    m = solution_module("kv_fix_b")

    class CausalSelfAttention(m.CausalSelfAttention):
        def forward(self, x, cache=None):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=-1)
            q, k, v = (t.view(B, T, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
            if cache is not None:
                k, v = cache.update(self.layer, k, v)
            S = k.size(2)
            mask = self.causal_mask.narrow(0, S - T, T).narrow(1, 0, S)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            return self.proj(y.transpose(1, 2).reshape(B, T, C))

    m.CausalSelfAttention = CausalSelfAttention

    class TinyLM(m.TinyLM):
        def forward(self, idx, cache=None):
            B, T = idx.shape
            start = 0 if cache is None else len(cache)
            x = self.tok(idx) + self.pos.weight[start:start + T]
            for block in self.blocks:
                x = block(x, cache)
            return self.head(self.ln_f(x))

    @torch.no_grad()
    def generate(model, prompt, max_new_tokens, use_cache=True, temperature=0.0, generator=None):
        cache = None
        if use_cache:
            cache = model.cache
            cache.reset()
        tokens, chosen = prompt, []
        feed = prompt
        for _ in range(max_new_tokens):
            logits = model(feed if cache is not None else tokens, cache)[:, -1]
            chosen.append(logits)
            if temperature == 0:
                nxt = logits.argmax(-1)[:, None]
            else:
                nxt = torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=generator)
            tokens, feed = torch.cat([tokens, nxt], 1), nxt
        return tokens, torch.stack(chosen, 1)

    return dict(Config=m.Config, KVCache=m.KVCache, CausalSelfAttention=CausalSelfAttention, Block=m.Block,
                TinyLM=TinyLM, generate=generate)


CORRECT = {"truthy-cache-onthefly-mask": truthy_cache_onthefly_mask, "sdpa-narrow-explicit-prefill": sdpa_narrow_explicit_prefill}


@pytest.mark.parametrize("name", list(CORRECT))
def test_10_hidden_tests_pass_on_other_correct_fixes(name, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / ASSIGNMENT)  # grading finds source/ from here
    run_graded_cells(ASSIGNMENT, CORRECT[name](), your_test="test_kv_cache")


def names(**override):
    m = solution_module("kv_fix_base")
    found = {k: getattr(m, k) for k in ("Config", "KVCache", "CausalSelfAttention", "Block", "TinyLM", "generate")}
    found.update(override)
    return found


def last_row_for_single_tokens():
    """Wrong: the mask fixed for one new token only (the last row); a piece of several new tokens after
    a cache (chunked prefill, speculative decoding) still gets the top rows."""
    m = solution_module("kv_wrong_mask")

    class CausalSelfAttention(m.CausalSelfAttention):
        def forward(self, x, cache=None):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=-1)
            q, k, v = (t.view(B, T, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
            if cache is not None:
                k, v = cache.update(self.layer, k, v)
            S = k.size(2)
            mask = self.causal_mask[S - 1:S, :S] if T == 1 else self.causal_mask[:T, :S]
            att = (q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))).masked_fill(~mask, float("-inf"))
            return self.proj((att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C))

    m.CausalSelfAttention = CausalSelfAttention
    return names(CausalSelfAttention=CausalSelfAttention, Block=m.Block, TinyLM=m.TinyLM)


def reset_after_generating():
    """Wrong: the cache emptied at the end of every call instead of the start. Requests look
    independent, but the cache no longer holds the sequence afterwards, as the docstring promises,
    and whatever filled it before the first call leaks in."""
    m = solution_module("kv_wrong_reset")
    source = answer_cell(ASSIGNMENT, "kv-code", bugs={"kv-stale-cache"})
    source = source.replace("    return tokens, torch.stack(chosen_from, dim=1)",
                            "    if cache is not None:\n        cache.reset()\n    return tokens, torch.stack(chosen_from, dim=1)")
    exec(compile(source, "<kv_wrong_reset>", "exec", dont_inherit=True), m.__dict__)
    return names(**{k: getattr(m, k) for k in ("Config", "KVCache", "CausalSelfAttention", "Block", "TinyLM",
                                                 "generate")})


@pytest.mark.parametrize("wrong, loses", [
    (last_row_for_single_tokens, {"hidden-mask": 2}),
    (reset_after_generating, {"visible-requests": 1, "hidden-cost": 2}),
])
def test_10_plausible_wrong_fixes_lose_points(wrong, loses, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / ASSIGNMENT)
    assert points_lost(ASSIGNMENT, wrong()) == loses
    assert points_lost(ASSIGNMENT, names()) == {}  # the same harness gives the author's fix full marks
