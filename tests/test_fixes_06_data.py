"""Hidden tests of 06_data accept any correct fix, and a plausible wrong fix loses points.

Each correct fix starts from the code students receive (all five bugs planted) and repairs every
function differently from the source notebook: pad_sequence or padding before shifting instead
of a loop, a table size derived from the pad id, split or narrow instead of slicing, a boolean
mask or the end of the permutation for the held-out set. Every graded cell must pass on each of
them, and so must the author's model answer to "your test". The wrong fixes are what a hurried
student might write: each passes the visible tests (or looks right) and must lose hidden points.
"""
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from conftest import ROOT, answer_cell, graded_cells, run_graded_cells

BUGS = {"data-pad-outside-table", "data-target-shift", "data-pad-target", "data-label-in-input",
        "data-val-labels"}
NAMES = ("Vocab", "IGNORE_INDEX", "collate_lm", "lm_loss", "split_rows", "train_val_split")


def released(**replacements):
    """The answer cell as students get it (every bug in place), with some names replaced."""
    namespace = {}
    exec(answer_cell("06_data", "data-code", bugs=BUGS), namespace)
    namespace.update(replacements)
    return {name: namespace[name] for name in NAMES}


def author():
    namespace = {}
    exec(answer_cell("06_data", "data-code"), namespace)
    return {name: namespace[name] for name in NAMES}


def pad_sequence_and_mask():
    IGNORE_INDEX = -100

    class Vocab:
        def __init__(self, n_real):
            self.n_real, self.pad_id = n_real, n_real

        @property
        def size(self):
            return self.pad_id + 1  # ids 0..pad_id

    def collate_lm(seqs, vocab):
        inputs = pad_sequence([s[:-1] for s in seqs], batch_first=True, padding_value=vocab.pad_id)
        targets = pad_sequence([s[1:] for s in seqs], batch_first=True, padding_value=IGNORE_INDEX)
        return inputs, targets

    def split_rows(rows):
        y, x = rows.split([1, rows.size(1) - 1], dim=1)
        return x, y.squeeze(1)

    def train_val_split(x, y, n_val, generator):
        held = torch.zeros(len(x), dtype=torch.bool)
        held[torch.randperm(len(x), generator=generator)[:n_val]] = True
        return (x[~held], y[~held]), (x[held], y[held])

    return released(IGNORE_INDEX=IGNORE_INDEX, Vocab=Vocab, collate_lm=collate_lm, split_rows=split_rows,
                    train_val_split=train_val_split)


def pad_then_shift():
    ns = released()

    class Vocab(ns["Vocab"]):
        def __init__(self, n_real):
            super().__init__(n_real)
            self.size = max(n_real, self.pad_id) + 1

    def collate_lm(seqs, vocab):
        L = max(len(s) for s in seqs)
        full = torch.full((len(seqs), L), vocab.pad_id, dtype=torch.long)  # (B, T + 1) padded documents
        for b, s in enumerate(seqs):
            full[b, :len(s)] = s
        targets = full[:, 1:].clone()
        targets[targets == vocab.pad_id] = ns["IGNORE_INDEX"]  # pads are never real tokens
        return full[:, :-1], targets

    def split_rows(rows):
        return rows.narrow(1, 1, rows.size(1) - 1).clone(), rows.select(1, 0).clone()

    def train_val_split(x, y, n_val, generator):
        order = torch.randperm(len(y), generator=generator)
        keep, held = order[:len(y) - n_val], order[len(y) - n_val:]
        return (x.index_select(0, keep), y.index_select(0, keep)), (x.index_select(0, held), y.index_select(0, held))

    return released(Vocab=Vocab, collate_lm=collate_lm, split_rows=split_rows, train_val_split=train_val_split)


FIXES = {"pad_sequence_and_mask": pad_sequence_and_mask, "pad_then_shift": pad_then_shift}


@pytest.mark.parametrize("name", FIXES)
def test_06_hidden_tests_pass_on_other_correct_fixes(name, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "06_data")  # grading finds source/ from here
    run_graded_cells("06_data", FIXES[name](), your_test="test_data")


def test_06_the_fixes_really_differ_from_the_author_and_agree_with_it():
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(10, (length,), generator=g) for length in (7, 2, 5)]
    rows = torch.randint(2, 9, (20, 6), generator=g)
    ref = author()
    ref_batch = ref["collate_lm"](seqs, ref["Vocab"](10))
    for make in FIXES.values():
        fix = make()
        assert fix["collate_lm"] is not ref["collate_lm"] and fix["split_rows"] is not ref["split_rows"]
        vocab = fix["Vocab"](10)
        assert (vocab.pad_id, vocab.size) == (10, 11)
        inputs, targets = fix["collate_lm"](seqs, vocab)
        assert torch.equal(targets, ref_batch[1])
        before_end = torch.arange(6) < torch.tensor([len(s) - 1 for s in seqs])[:, None]
        assert torch.equal(inputs[before_end], ref_batch[0][before_end])
        for mine, theirs in zip(fix["split_rows"](rows), ref["split_rows"](rows)):
            assert torch.equal(mine, theirs)


def failing_cells(names):
    """grade_id -> error of every graded cell that fails with `names` in place of the answer cell."""
    namespace = {}
    exec(answer_cell("06_data", "your-test"), namespace)
    namespace.update(names)
    failed = {}
    for cell, code in graded_cells("06_data").items():
        try:
            exec(code, dict(namespace))
        except Exception as err:  # noqa: BLE001 (collect every failure)
            failed[cell] = f"{type(err).__name__}: {err}"
    return failed


def test_06_the_released_code_fails_every_test_cell(monkeypatch):
    monkeypatch.chdir(ROOT / "release" / "06_data")
    failed = failing_cells(released())
    assert set(failed) >= {cell for cell in graded_cells("06_data") if cell != "hidden-your-test"}


def test_06_a_validation_set_of_the_first_rows_passes_the_visible_tests_but_loses_hidden_points(monkeypatch):
    """"Fixing" the split by holding out the first n_val rows keeps labels with their inputs (every
    visible test passes), but those rows also stay in the training set: a leak by overlap."""
    monkeypatch.chdir(ROOT / "release" / "06_data")

    def train_val_split(x, y, n_val, generator):
        train = torch.randperm(len(x), generator=generator)[n_val:]
        return (x[train], y[train]), (x[:n_val], y[:n_val])

    fix = author()
    fix["train_val_split"] = train_val_split
    failed = failing_cells(fix)
    assert not [cell for cell in failed if cell.startswith("visible-")], failed
    assert "hidden-split" in failed and "appear twice" in failed["hidden-split"], failed


def test_06_a_real_token_as_pad_loses_the_vocab_points(monkeypatch):
    """"Fixing" the crash by padding with the last real token keeps every id inside the table,
    but a pad then looks like a real token: the hidden Vocab test says so."""
    monkeypatch.chdir(ROOT / "release" / "06_data")

    class Vocab:
        def __init__(self, n_real):
            self.n_real, self.pad_id, self.size = n_real, n_real - 1, n_real

    fix = author()
    fix["Vocab"] = Vocab
    failed = failing_cells(fix)
    assert "visible-table" not in failed
    assert "hidden-vocab" in failed and "real token" in failed["hidden-vocab"], failed
