"""Hidden tests of notebook 09 (reproducibility) accept any correct fix, and catch plausible wrong ones.

The other correct fixes rewrite every function that carries a planted bug: the seed set through
torch.random, the loader's stream given to a RandomSampler as well, or derived from the run's seed
with a NumPy SeedSequence; the worker noise fixed in seed_worker with torch.initial_seed(), or in
the dataset itself (which then reseeds its generator the first time a worker uses it, leaving the
planted seed_worker in place); checkpoints as a list or as nested dicts under other names. Every
graded cell must pass on each, and so must the author's model answer to "your test".

The wrong fixes are the ones a hurried student writes: each passes the visible test of its bug and
must lose the points of that bug's hidden test.
"""
import os
import tempfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset, get_worker_info

from conftest import ROOT, answer_cell, graded_cells, run_graded_cells

ASSIGNMENT = "09_reproducibility"
NAMES = ("NoisySequences", "seed_worker", "make_loader", "Run", "start_run", "train_epoch",
         "save_checkpoint", "load_checkpoint")


def reproducibility_09(name, bugs=(), **replacements):
    """The author's answer cell (with `bugs` planted) and some functions replaced; the names the
    tests use. Replacements are put in the cell's namespace, so the author's functions call them."""
    namespace = {"__name__": f"fix_{name}"}
    exec(answer_cell(ASSIGNMENT, "repro-code", frozenset(bugs)), namespace)
    namespace.update({k: v(namespace) if getattr(v, "needs_namespace", False) else v
                      for k, v in replacements.items()})
    fix = {n: namespace[n] for n in NAMES}
    fix["Run"] = type(name, (namespace["Run"],), {})  # names the fix in test ids and messages
    return fix


def with_namespace(factory):
    """Mark a replacement that needs the cell's namespace (other names of the same fix)."""
    factory.needs_namespace = True
    return factory


# --- other correct fixes -------------------------------------------------------------------------

def torch_random_and_lists():
    def seed_worker(worker_id):
        dataset = get_worker_info().dataset
        dataset.rng = np.random.Generator(np.random.PCG64(torch.initial_seed()))  # == info.seed in a worker

    @with_namespace
    def make_loader(ns):
        def make_loader(dataset, seed, batch_size=32, num_workers=2):
            g = torch.Generator()
            g.manual_seed(seed)
            return DataLoader(dataset, batch_size=batch_size, sampler=RandomSampler(dataset, generator=g),
                              generator=g, num_workers=num_workers, worker_init_fn=ns["seed_worker"])
        return make_loader

    @with_namespace
    def start_run(ns):
        def start_run(seed, make_model, dataset, lr=1e-2, warmup=16, batch_size=32, num_workers=2):
            torch.random.manual_seed(seed)
            model = make_model()
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
            return ns["Run"](model, optimizer, scheduler, ns["make_loader"](dataset, seed, batch_size, num_workers))
        return start_run

    def save_checkpoint(path, run):
        torch.save([run.model.state_dict(), run.optimizer.state_dict(), run.scheduler.state_dict(),
                    torch.random.get_rng_state(), run.loader.generator.get_state()], path)

    def load_checkpoint(path, run):
        model, optimizer, scheduler, torch_rng, loader_rng = torch.load(path, weights_only=True)
        run.model.load_state_dict(model)
        run.optimizer.load_state_dict(optimizer)
        run.scheduler.load_state_dict(scheduler)
        torch.random.set_rng_state(torch_rng)
        run.loader.generator.set_state(loader_rng)

    return reproducibility_09("TorchRandomAndLists", seed_worker=seed_worker, make_loader=make_loader,
                              start_run=start_run, save_checkpoint=save_checkpoint, load_checkpoint=load_checkpoint)


def dataset_reseeds_itself():
    @with_namespace
    def noisy_sequences(ns):
        class SelfSeeding(ns["NoisySequences"]):
            """Reseeds its generator the first time a worker (a new copy) uses it; seed_worker stays buggy."""

            def __getitem__(self, i):
                info = get_worker_info()
                if info is not None and getattr(self, "seeded_for", None) != info.seed:
                    self.rng, self.seeded_for = np.random.default_rng(np.random.SeedSequence(info.seed)), info.seed
                return super().__getitem__(i)
        return SelfSeeding

    @with_namespace
    def make_loader(ns):
        def make_loader(dataset, seed, batch_size=32, num_workers=2):
            loader_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])  # a stream of its own
            return DataLoader(dataset, batch_size, shuffle=True, num_workers=num_workers,
                              generator=torch.Generator().manual_seed(loader_seed), worker_init_fn=ns["seed_worker"])
        return make_loader

    @with_namespace
    def start_run(ns):
        def start_run(seed, make_model, dataset, lr=1e-2, warmup=16, batch_size=32, num_workers=2):
            loader = ns["make_loader"](dataset, seed, batch_size, num_workers)  # draws nothing from torch's stream
            torch.manual_seed(seed)
            model = make_model()
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
            return ns["Run"](model, optimizer, schedule, loader)
        return start_run

    def save_checkpoint(path, run):
        torch.save({"weights": run.model.state_dict(),
                    "training": {"adamw": run.optimizer.state_dict(), "schedule": run.scheduler.state_dict()},
                    "generators": {"global": torch.get_rng_state().clone(), "data": run.loader.generator.get_state()}},
                   path)

    def load_checkpoint(path, run):
        state = torch.load(path)
        run.model.load_state_dict(state["weights"])
        run.optimizer.load_state_dict(state["training"]["adamw"])
        run.scheduler.load_state_dict(state["training"]["schedule"])
        run.loader.generator.set_state(state["generators"]["data"])
        torch.set_rng_state(state["generators"]["global"])

    return reproducibility_09("DatasetReseedsItself", bugs={"repro-worker-rng"}, NoisySequences=noisy_sequences,
                              make_loader=make_loader, start_run=start_run, save_checkpoint=save_checkpoint,
                              load_checkpoint=load_checkpoint)


CORRECT = [torch_random_and_lists, dataset_reseeds_itself]


@pytest.mark.parametrize("make_fix", CORRECT, ids=lambda f: f.__name__)
def test_09_hidden_tests_pass_on_other_correct_fixes(make_fix, monkeypatch):
    monkeypatch.chdir(ROOT / "release" / ASSIGNMENT)  # grading finds source/ from here
    run_graded_cells(ASSIGNMENT, make_fix(), your_test="test_reproducibility")


def test_09_the_fixes_really_differ_from_the_author_and_resume_bitwise():
    author = reproducibility_09("Author")
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randint(8, (24, 5), generator=g), torch.randint(8, (24, 5), generator=g))

    def tiny():
        return nn.Sequential(nn.Embedding(8, 8), nn.Dropout(0.2), nn.Linear(8, 8))

    checkpoints = []
    for make_fix in CORRECT:
        fix = make_fix()
        assert all(fix[n] is not author[n] for n in ("make_loader", "start_run", "save_checkpoint", "load_checkpoint"))
        straight = fix["start_run"](4, tiny, data, batch_size=8, num_workers=0)
        expected = [loss for _ in range(4) for loss in fix["train_epoch"](straight)]
        run = fix["start_run"](4, tiny, data, batch_size=8, num_workers=0)
        losses = [loss for _ in range(2) for loss in fix["train_epoch"](run)]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "checkpoint.pt")
            fix["save_checkpoint"](path, run)
            checkpoints.append(type(torch.load(path, weights_only=False)).__name__)
            run = fix["start_run"](4, tiny, data, batch_size=8, num_workers=0)
            fix["load_checkpoint"](path, run)
        assert losses + [loss for _ in range(2) for loss in fix["train_epoch"](run)] == expected
    assert checkpoints == ["list", "dict"]
    assert dataset_reseeds_itself()["seed_worker"].__code__.co_names != author["seed_worker"].__code__.co_names


# --- plausible wrong fixes: each passes its visible test and loses its hidden points -------------

def tolerant_loader():
    """Bug 1 'fixed' by a loader that skips what the checkpoint lacks: no crash, but a drifting resume."""
    def load_checkpoint(path, run):
        state = torch.load(path)
        run.model.load_state_dict(state["model"])
        for key, target in (("optimizer", run.optimizer), ("scheduler", run.scheduler)):
            if key in state:
                target.load_state_dict(state[key])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if "loader_rng" in state:
            run.loader.generator.set_state(state["loader_rng"])
    return reproducibility_09("TolerantLoader", bugs={"repro-checkpoint-model-only"}, load_checkpoint=load_checkpoint)


def checkpoint_without_generators():
    """Bug 1 'fixed' with the optimizer and the schedule, but no generator states."""
    def save_checkpoint(path, run):
        torch.save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                    "scheduler": run.scheduler.state_dict()}, path)

    def load_checkpoint(path, run):
        state = torch.load(path)
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
    return reproducibility_09("NoGenerators", save_checkpoint=save_checkpoint, load_checkpoint=load_checkpoint)


def workers_seeded_by_id():
    """Bug 4 'fixed' with the worker id as seed: workers differ, but every epoch and every run repeat."""
    def seed_worker(worker_id):
        get_worker_info().dataset.rng = np.random.default_rng(worker_id)
    return reproducibility_09("SeededById", seed_worker=seed_worker)


def seed_in_a_fork():
    """Bug 3 'fixed' by seeding only the model's construction: equal weights, different dropout."""
    @with_namespace
    def start_run(ns):
        def start_run(seed, make_model, dataset, lr=1e-2, warmup=16, batch_size=32, num_workers=2):
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                model = make_model()
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
            return ns["Run"](model, optimizer, scheduler, ns["make_loader"](dataset, seed, batch_size, num_workers))
        return start_run
    return reproducibility_09("SeedInAFork", start_run=start_run)


def sampler_only_generator():
    """Bug 2 'fixed' in the sampler only: the order is seeded, the workers' seeds are not."""
    @with_namespace
    def make_loader(ns):
        def make_loader(dataset, seed, batch_size=32, num_workers=2):
            sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
            return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                              worker_init_fn=ns["seed_worker"])
        return make_loader
    return reproducibility_09("SamplerOnly", make_loader=make_loader)


def outcomes(names: dict) -> dict[str, bool]:
    """grade_id -> passed, for every autograded cell but the grading of the student's test."""
    results = {}
    for cell, code in graded_cells(ASSIGNMENT).items():
        if cell == "hidden-your-test":
            continue  # grades the model answer to "your test" against the author's builds: not a fix's business
        try:
            exec(code, dict(names))
            results[cell] = True
        except Exception:  # noqa: BLE001 (a failing cell is the outcome we record)
            results[cell] = False
    return results


@pytest.mark.parametrize("make_fix, visible, hidden", [
    (tolerant_loader, "visible-resume", "hidden-resume"),
    (checkpoint_without_generators, "visible-resume", "hidden-resume"),
    (workers_seeded_by_id, "visible-worker-noise", "hidden-worker-noise"),
    (seed_in_a_fork, "visible-same-seed", "hidden-same-seed"),
    (sampler_only_generator, "visible-loader-order", "hidden-loader-seed"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_09_a_plausible_wrong_fix_passes_the_visible_test_and_loses_the_hidden_points(make_fix, visible, hidden):
    results = outcomes(make_fix())
    assert results[visible], f"{make_fix.__name__} should pass {visible}: it looks like a fix"
    assert [cell for cell, ok in results.items() if not ok] == [hidden]
