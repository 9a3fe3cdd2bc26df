"""Training: loss falls and the toy grammar is learned; sparse = dense; resume after SIGKILL; torchrun; bad input."""

from __future__ import annotations

import errno
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import brillm_core.training.rundir as rundir_mod
from brillm_core.checkpoint import checkpoint_dirs, load_checkpoint
from brillm_core.cli.train import main as cli_main
from brillm_core.config import ModelConfig
from brillm_core.data import BigramCounts, SequenceBatches, build_tokenizer, corpus_lines, read_corpus, tokenize_lines
from brillm_core.model import edge_outputs
from brillm_core.trace import DecodeSettings
from brillm_core.training import TrainSettings, TrainingError, train
from brillm_core.training.init.random import init_model
from brillm_core.training.objective import Objective
from brillm_core.training.trainer import Trainer
from tests.toy_grammar import follows_grammar, write_toy

ROOT = Path(__file__).resolve().parents[1]
TOY = dict(tokenizer="word", vocab_size=None, hidden_size=4, max_positions=32, seq_len=12, batch_size=8, negatives=400)


def toy_settings(**changes) -> TrainSettings:
    """Small, fast settings for the toy grammar."""
    return TrainSettings(**{**TOY, "max_steps": 60, "save_every": 30, **changes})


def parameters(path: Path) -> dict[str, torch.Tensor]:
    """The four parameter tensors of a saved checkpoint."""
    model = load_checkpoint(path, device="cpu").model
    return {k: getattr(model, k).detach().clone() for k in ("weights", "biases", "node_bias", "positions")}


def test_loss_falls_and_greedy_output_follows_the_grammar(tmp_path):
    corpus = write_toy(tmp_path / "toy.txt")
    path = train([corpus], tmp_path / "run", toy_settings(max_steps=120, save_every=120), progress=False)
    ck = load_checkpoint(path, device="cpu")
    history = ck.metadata["training"]["loss_history"]
    assert len(history) == 120
    assert sum(history[-20:]) / 20 < 0.5 * sum(history[:5]) / 5
    trace = ck.trace("the", DecodeSettings(max_new_tokens=20))
    words = [ck.token(int(u)) for u in trace.path]
    assert follows_grammar(words), words
    assert ck.metadata["training"]["data_position"]["step"] == 120


def _trainer_pair(tmp_path: Path, **changes) -> tuple[Trainer, Trainer, SequenceBatches]:
    """Sparse and dense trainers from one initialisation, on text using every edge of 4 words."""
    rng = torch.Generator().manual_seed(3)
    words = ["w", "x", "y", "z"]
    text = " ".join(words[int(i)] for i in torch.randint(0, 4, (400,), generator=rng))
    lines = corpus_lines(read_corpus([_write(tmp_path / "c.txt", text)]))
    tok = build_tokenizer("word", lines, None)
    stream, _ = tokenize_lines(tok, lines)
    counts = BigramCounts.from_stream(stream, tok.vocab_size)
    edges = counts.edges()
    assert edges.num_own == 16  # every bigram of the 4 words owns a row; [UNK]'s edges share row 0
    config = ModelConfig(vocab_size=tok.vocab_size, hidden_size=6, max_positions=16, num_rows=edges.num_rows)
    pair = [Trainer(init_model(config, edges, 0), toy_settings(sparse=s, hidden_size=6, **changes), counts) for s in (True, False)]
    return pair[0], pair[1], SequenceBatches(stream, 10, 8, seed=0)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("changes", [
    dict(objective="sampled"),
    dict(objective="exact", weight_decay=0.5, lr_weights=2e-2, lr_positions=1e-1, warmup=2, schedule="cosine", max_steps=5, adam_eps=1e-4),
])
def test_sparse_and_dense_training_agree_on_the_first_steps(tmp_path, changes):
    # Every row is touched at every step here, so RowAdamW's lazy decay equals AdamW's.
    sparse, dense, batches = _trainer_pair(tmp_path, **changes)
    assert sparse.params.weights.weight.data_ptr() == sparse.model.weights.data_ptr()  # flat view shares storage
    for step in range(4):
        ids = batches.batch(step)
        assert abs(sparse.step(ids, step) - dense.step(ids, step)) < 1e-5
        for name in ("weights", "biases", "node_bias", "positions"):
            a, b = getattr(sparse.model, name), getattr(dense.model, name)
            assert torch.allclose(a, b, atol=1e-5, rtol=0), (step, name, float((a - b).abs().max()))
    assert sparse.model.weights.grad is None and sparse.params.weights.weight.grad.is_sparse


def reference_loss(model, ids: torch.Tensor, cands: torch.Tensor) -> float:
    """The spec's loss written plainly with the engine's own start/memory/edge functions, one sequence at a time."""
    total, count = 0.0, 0
    with torch.no_grad():
        for seq, cand in zip(ids.tolist(), cands):
            kept = []
            for i in range(len(seq) - 1):
                signal = model.start_signal(seq[0]) if i == 0 else model.memory_signal(torch.stack(kept))[0]
                rows = model.edges.rows(torch.full_like(cand[i], seq[i]), cand[i])
                out = edge_outputs(signal, model.weights[rows], model.biases[rows, 0], model.pe[i + 1])
                total += float(torch.nn.functional.cross_entropy(out.norm(dim=-1)[None], torch.tensor([0])))
                kept.append(out[0])
                count += 1
    return total / count


@pytest.mark.parametrize("hard", [True, False])
def test_training_loss_matches_the_spec_written_plainly(tmp_path, hard):
    trainer, _, batches = _trainer_pair(tmp_path, objective="sampled", hard_negatives=hard, negatives=3)
    with torch.no_grad():
        trainer.model.positions.uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
    ids = batches.batch(0)
    cands = _candidate_targets(trainer, ids, 0)
    assert torch.equal(trainer.model.edges.rows(ids[:, :-1, None], cands), trainer.candidate_rows(ids, 0))
    assert trainer.loss(ids, 0).item() == pytest.approx(reference_loss(trainer.model, ids, cands), abs=1e-5)


def _candidate_targets(trainer: Trainer, ids: torch.Tensor, step: int) -> torch.Tensor:
    """The candidate target nodes (gold first) that ``candidate_rows`` turns into rows."""
    from brillm_core.data import drop_gold, random_negatives, step_generator

    sources, gold = ids[:, :-1], ids[:, 1:]
    if trainer.hard is not None:
        negs = trainer.hard[sources].gather(-1, drop_gold(trainer.hard[sources], gold))
    else:
        negs = random_negatives(gold, trainer.model.vocab_size, trainer.k, step_generator(trainer.settings.seed, step, 0))
    return torch.cat([gold.unsqueeze(-1), negs], -1)


def _cli(*args: str) -> subprocess.Popen:
    """Start ``brillm train ...`` in a subprocess (the module entry point)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "brillm_core.cli.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_resume_after_sigkill_continues_exactly(tmp_path):
    corpus = write_toy(tmp_path / "toy.txt")
    args = [str(corpus), "--tokenizer", "word", "--hidden-size", "4", "--max-positions", "32", "--seq-len", "12",
            "--batch-size", "8", "--random-negatives", "--negatives", "5", "--max-steps", "300", "--save-every", "10",
            "--no-progress", "--seed", "3"]
    killed = tmp_path / "killed"
    proc = _cli("train", *args, "-o", str(killed))
    deadline = time.time() + 60
    while not checkpoint_dirs(killed) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    first = checkpoint_dirs(killed)[-1][0]
    assert 0 < first < 300
    assert cli_main(["train", *args, "-o", str(killed), "--resume"]) == 0
    assert cli_main(["train", *args, "-o", str(tmp_path / "whole")]) == 0
    resumed = load_checkpoint(checkpoint_dirs(killed)[-1][1], device="cpu").metadata["training"]
    whole = load_checkpoint(checkpoint_dirs(tmp_path / "whole")[-1][1], device="cpu").metadata["training"]
    a, b = parameters(checkpoint_dirs(killed)[-1][1]), parameters(checkpoint_dirs(tmp_path / "whole")[-1][1])
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert resumed["loss_history"] == whole["loss_history"]
    assert resumed["data_position"] == whole["data_position"] == {"step": 300, "epoch": whole["data_position"]["epoch"], "offset": whole["data_position"]["offset"]}
    assert resumed["run_id"] != whole["run_id"]


def test_two_process_torchrun_stays_in_step(tmp_path):
    corpus = write_toy(tmp_path / "toy.txt")
    common = ["--tokenizer", "word", "--hidden-size", "4", "--max-positions", "32", "--seq-len", "12",
              "--max-steps", "40", "--save-every", "20", "--no-progress", "--lr", "1e-2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "brillm_core.cli.train", "train", str(corpus), "-o", str(tmp_path / "ddp"), "--batch-size", "4", *common]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = load_checkpoint(checkpoint_dirs(tmp_path / "ddp")[-1][1], device="cpu").metadata["training"]
    assert meta["world_size"] == 2 and meta["distributed"] == "DistributedDataParallel"
    sums = meta["rank_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]
    history = meta["loss_history"]
    assert sum(history[-10:]) / 10 < 0.7 * sum(history[:3]) / 3
    # Averaging two ranks' gradients over batches of 4 equals one process with batches of 8.
    assert cli_main(["train", str(corpus), "-o", str(tmp_path / "one"), "--batch-size", "8", *common]) == 0
    single = load_checkpoint(checkpoint_dirs(tmp_path / "one")[-1][1], device="cpu").metadata["training"]
    assert max(abs(x - y) for x, y in zip(history, single["loss_history"])) < 1e-4
    a, b = parameters(checkpoint_dirs(tmp_path / "ddp")[-1][1]), parameters(checkpoint_dirs(tmp_path / "one")[-1][1])
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-4), name


def test_resume_refuses_another_runs_directory(tmp_path, capsys):
    corpus = write_toy(tmp_path / "toy.txt")
    other = write_toy(tmp_path / "other.txt", seed=9)
    train([corpus], tmp_path / "run", toy_settings(max_steps=10, save_every=10), progress=False)
    with pytest.raises(TrainingError, match="belongs to another run.*corpus_sha256"):
        train([other], tmp_path / "run", toy_settings(max_steps=20), resume=True, progress=False)
    with pytest.raises(TrainingError, match="belongs to another run.*seq_len"):
        train([corpus], tmp_path / "run", toy_settings(max_steps=20, seq_len=10), resume=True, progress=False)
    with pytest.raises(TrainingError, match="already holds checkpoints"):
        train([corpus], tmp_path / "run", toy_settings(), progress=False)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train([corpus], tmp_path / "elsewhere", toy_settings(), resume=True, progress=False)
    assert cli_main(["train", str(corpus), "-o", str(tmp_path / "empty"), "--resume", "--tokenizer", "word"]) == 1
    assert "nothing to resume" in capsys.readouterr().err


def test_resume_on_a_corrupt_checkpoint_is_a_clear_error(tmp_path):
    corpus = write_toy(tmp_path / "toy.txt")
    path = train([corpus], tmp_path / "run", toy_settings(max_steps=10, save_every=10), progress=False)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(TrainingError, match=r"step-00000010 is corrupt.*delete that directory"):
        train([corpus], tmp_path / "run", toy_settings(max_steps=20), resume=True, progress=False)


def test_failed_write_leaves_the_last_good_checkpoint_intact(tmp_path, monkeypatch):
    corpus = write_toy(tmp_path / "toy.txt")
    real_save = rundir_mod.save_file
    calls = {"n": 0}

    def disk_full_on_second_checkpoint(tensors, filename, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            real_save(tensors, filename, *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(rundir_mod, "save_file", disk_full_on_second_checkpoint)
    with pytest.raises(TrainingError, match=r"No space left.*step-00000010\) is intact"):
        train([corpus], tmp_path / "run", toy_settings(max_steps=30, save_every=10), progress=False)
    assert [s for s, _ in checkpoint_dirs(tmp_path / "run")] == [10]
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["step-00000010"]
    monkeypatch.setattr(rundir_mod, "save_file", real_save)
    resumed = train([corpus], tmp_path / "run", toy_settings(max_steps=30, save_every=10), resume=True, progress=False)
    whole = train([corpus], tmp_path / "whole", toy_settings(max_steps=30, save_every=10), progress=False)
    a, b = parameters(resumed), parameters(whole)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_reports_bad_corpus(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "bytes.txt").write_bytes(b"ok \xff\xfe bad\n")
    (tmp_path / "short.txt").write_text("the cat sees a ball .\n", encoding="utf-8")
    for name, message in (("empty.txt", "is empty"), ("bytes.txt", "not UTF-8"), ("short.txt", "fewer than one training sequence")):
        code = cli_main(["train", str(tmp_path / name), "-o", str(tmp_path / f"run-{name}"), "--tokenizer", "word", "--no-progress"])
        assert code == 1
        assert message in capsys.readouterr().err


FREE_AND_MEASURE = """
import sys, torch
from brillm_core.allocator import keep_freed_memory
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
x = torch.ones(2**26)  # 256 MB, written so its pages are resident
before = rss()
del x
print(kept, before - rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc setting")
@pytest.mark.parametrize("mode", ["keep", "default"])
def test_training_allocator_keeps_freed_memory(mode):
    """With the training setting a freed 256 MB block stays in the process (no page faults
    to get it back next step); by default glibc returns it at once."""
    out = subprocess.run([sys.executable, "-c", FREE_AND_MEASURE, mode], capture_output=True, text=True, check=True).stdout.split()
    returned = int(out[1])
    if mode == "keep":
        assert out[0] == "True" and returned < 2**24
    else:
        assert returned > 2**27


def test_exact_objective_equals_a_brute_force_softmax_over_all_targets():
    """float64: own rows + one shared term weighted by its count = the softmax over all V targets, per the reference."""
    from brillm_core.model import random_model
    from tests.reference import ReferenceBriLLM

    model = random_model(23, hidden_size=6, own_edges=0.3, seed=3, max_positions=16).double()
    with torch.no_grad():
        model.weights.mul_(3.0)  # spread the energies so that the softmax is far from uniform
    ids = torch.randint(0, 23, (3, 9), generator=torch.Generator().manual_seed(1))
    ids[0, 1:4] = ids[0, 0]  # self-loops are candidates and targets too
    reference = ReferenceBriLLM.from_model(model)
    brute = [-math.log(step["probabilities"][t]) for seq in ids.tolist() for step, t in zip(reference.run(seq), seq[1:])]
    exact = Objective(model, sparse=True).exact_loss(ids, reduction="sum").detach()
    assert exact.dtype == torch.float64
    assert float(exact) == pytest.approx(sum(brute), abs=1e-6 * len(brute))
    assert float(Objective(model, sparse=True).exact_loss(ids).detach()) == pytest.approx(sum(brute) / len(brute), abs=1e-6)


@pytest.mark.parametrize("min_count", [1, 2])
def test_count_initialised_model_gives_the_row_tied_kneser_ney_bigram(min_count):
    """Every step's full-vocabulary distribution is the bigram's (own rows: Kneser-Ney; shared row: the rest, evenly)."""
    from brillm_core.bigram import estimate_discount, kneser_ney_probs
    from brillm_core.training.init.counts import count_initialise, tied_bigram_probs
    from brillm_core.propagate import propagate

    V = 12
    gen = torch.Generator().manual_seed(5)
    stream = torch.multinomial(torch.linspace(1, 3, V) ** 3, 400, replacement=True, generator=gen)
    counts = BigramCounts.from_stream(stream, V)
    edges = counts.edges(min_count)
    model = init_model(ModelConfig(vocab_size=V, hidden_size=8, max_positions=64, num_rows=edges.num_rows), edges, seed=0)
    count_initialise(model, counts, min_count)
    tied = tied_bigram_probs(counts, min_count, torch.arange(V))
    kn = kneser_ney_probs(counts, torch.arange(V), estimate_discount(counts))
    assert tied.sum(1).tolist() == pytest.approx([1.0] * V)
    own = torch.zeros(V, V, dtype=torch.bool)
    own[edges.own_pairs()] = True
    assert torch.equal(tied[own], kn[own]) and not torch.equal(tied, kn)  # own rows exact; unseen successors tied
    path = torch.randint(0, V, (60,), generator=gen).tolist()  # 59 steps: PE[1..59] all differ
    trace = propagate(model, path, DecodeSettings().with_new_tokens(0))
    got = torch.log_softmax(trace.energies.double(), dim=1)
    want = tied[torch.tensor(path[:-1])].log()
    # Bound (brillm_core.training.init.counts): OFF channels move a log-probability by <= (d - 1) * 3.4e-6 = 2.4e-5;
    # float32 energies near 25 round by about 2e-6 each.
    assert (got - want).abs().max().item() < 3e-5


def test_learning_rate_schedules():
    cosine = TrainSettings(max_steps=12, warmup=2, schedule="cosine")
    assert [cosine.lr_factor(s) for s in (0, 1, 2, 7)] == pytest.approx([0.5, 1.0, 1.0, 0.5])
    assert cosine.lr_factor(11) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))
    assert TrainSettings(max_steps=10, schedule="linear").lr_factor(5) == pytest.approx(0.5)
    assert TrainSettings(lr=0.1, lr_weights=0.01).group_lr("weights") == 0.01
    assert TrainSettings(lr=0.1, lr_weights=0.01).group_lr("biases") == 0.1
    with pytest.raises(TrainingError, match="--schedule"):
        TrainSettings(schedule="step")


def test_validation_is_recorded_and_patience_stops_the_run(tmp_path, monkeypatch):
    corpus = write_toy(tmp_path / "toy.txt")
    held = write_toy(tmp_path / "held.txt", sentences=40, seed=9)
    worse = iter([10.0, 8.0, 9.0, 9.5, 9.9, 1.0])  # summed NLL per validation: best at step 10, then no better twice
    monkeypatch.setattr(Trainer, "validation_nll", lambda self, chunks: (next(worse), 1))
    path = train([corpus], tmp_path / "run", toy_settings(max_steps=60, save_every=10, keep_checkpoints=0, patience=2),
                 validation=held, progress=False)
    training = load_checkpoint(path, device="cpu").metadata["training"]
    assert training["step"] == 30  # stopped after steps 20 and 30 brought no new best
    assert training["validation_history"] == [[0, pytest.approx(math.exp(10))], [10, pytest.approx(math.exp(8))],
                                              [20, pytest.approx(math.exp(9))], [30, pytest.approx(math.exp(9.5))]]


def test_validation_perplexity_equals_brillm_eval(tmp_path):
    """The exact objective on held-out windows is the full-vocabulary perplexity `brillm eval` reports."""
    corpus = write_toy(tmp_path / "toy.txt")
    held = write_toy(tmp_path / "held.txt", sentences=30, seed=9)
    path = train([corpus], tmp_path / "run", toy_settings(max_steps=20, save_every=20), validation=held, progress=False)
    ck = load_checkpoint(path, device="cpu")
    from brillm_core.evaluate import evaluate

    assert ck.metadata["training"]["validation_history"][-1][1] == pytest.approx(evaluate(ck, held).model.perplexity, rel=1e-5)


def test_count_start_with_a_code_learns_w_from_the_code_channels_only(tmp_path):
    corpus = write_toy(tmp_path / "toy.txt")
    path = train([corpus], tmp_path / "run", toy_settings(max_steps=20, save_every=20, init="counts", init_code=0.5, lr=1e-2),
                 progress=False)
    model = load_checkpoint(path, device="cpu").model
    assert torch.count_nonzero(model.weights[:, 0, :]) == 0  # the energy channel's input row stays at its start, 0
    assert torch.count_nonzero(model.weights[:, 1:, :]) > 0
    ramp = model.positions[0, :4, 0]
    assert (ramp[1:] > ramp[:-1]).all()  # position logits start as a ramp: the memory favours recent outputs


def _brute_force_exact_loss(model, ids: torch.Tensor) -> torch.Tensor:
    """Mean full-vocabulary energy cross-entropy by the definition: all V targets' outputs, each from its own row index."""
    from brillm_core.decode import training_pe_index
    from brillm_core.model import gelu, memory_signal

    V, d = model.vocab_size, model.hidden_size
    losses = []
    for seq in ids:
        x, kept = gelu(1.0 / d + model.node_bias[seq[0], 0] + model.pe[0]), []
        for i in range(len(seq) - 1):
            rows = model.edges.rows(seq[i].expand(V), torch.arange(V))
            out = gelu(torch.einsum("d,vde->ve", x, model.weights[rows]) + model.biases[rows, 0] + model.pe[training_pe_index(i)])
            losses.append(-out.norm(dim=-1).log_softmax(0)[seq[i + 1]])
            kept.append(out[seq[i + 1]])
            x = memory_signal(model.positions, torch.stack(kept))[0]
    return torch.stack(losses).mean()


@pytest.mark.parametrize("sparse", [True, False])
def test_exact_objective_gradients_equal_a_brute_force_softmax(sparse):
    """float64 gradients of every parameter = those of the full softmax written out, with shared-row ties,
    a source with no own row (all V targets tied) and one whose V targets all own rows (no shared term)."""
    from brillm_core.edges import EdgeTable
    from brillm_core.model import BriLLM

    V, gen = 11, torch.Generator().manual_seed(4)
    own = torch.rand(V, V, generator=gen) < 0.35
    own[0], own[1] = False, True
    edges = EdgeTable.from_own_mask(own)
    model = BriLLM(ModelConfig(vocab_size=V, hidden_size=6, max_positions=16, num_rows=edges.num_rows), edges).double()
    model.reset_parameters(gen)
    with torch.no_grad():
        model.weights.mul_(3.0)
        model.positions.copy_(torch.randn(model.positions.shape, generator=gen, dtype=torch.float64))
    ids = torch.randint(0, V, (4, 10), generator=gen)
    ids[0, 2], ids[1, 5], ids[2, 3:6] = 0, 1, ids[2, 3]  # both extreme sources are read; self-loops too
    names = ("weights", "biases", "node_bias", "positions")
    _brute_force_exact_loss(model, ids).backward()
    want = {k: getattr(model, k).grad.clone() for k in names}
    model.zero_grad(set_to_none=True)
    params = Objective(model, sparse=sparse)
    params.exact_loss(ids).backward()
    got = {"weights": params.weights.weight.grad, "biases": params.biases.weight.grad,
           "node_bias": model.node_bias.grad, "positions": model.positions.grad}
    assert got["weights"].is_sparse == sparse
    for k in names:
        g = got[k].to_dense() if got[k].is_sparse else got[k]
        assert want[k].abs().max() > 1e-3  # every parameter group gets a real gradient
        torch.testing.assert_close(g.reshape(want[k].shape), want[k], rtol=0, atol=1e-5)


def test_exact_objective_ignores_the_shared_row_where_every_target_owns_a_row():
    """float32, a shared-row energy hundreds above the own rows': at a source whose V targets all own rows the
    shared term has weight 0 and must not set the log-sum-exp's maximum (that underflowed every term to log 0)."""
    from brillm_core.edges import EdgeTable
    from brillm_core.model import BriLLM

    V, gen = 6, torch.Generator().manual_seed(2)
    own = torch.zeros(V, V, dtype=torch.bool)
    own[1] = True  # node 1: every target owns a row; the others share row 0
    edges = EdgeTable.from_own_mask(own)
    model = BriLLM(ModelConfig(vocab_size=V, hidden_size=4, max_positions=8, num_rows=edges.num_rows), edges)
    model.reset_parameters(gen)
    with torch.no_grad():
        model.biases[0] += 300.0
    ids = torch.tensor([[1, 3, 1, 4, 1, 1]])
    got = Objective(model, sparse=True).exact_loss(ids, reduction="sum").detach()
    want = _brute_force_exact_loss(model.double(), ids).detach() * (ids.shape[1] - 1)
    assert math.isfinite(float(got))
    assert float(got) == pytest.approx(float(want), rel=1e-5)


@pytest.mark.parametrize("nll", [float("nan"), 1e6])
def test_a_diverged_validation_is_an_error_not_an_overflow(nll: float) -> None:
    from types import SimpleNamespace

    from brillm_core.errors import TrainingError
    from brillm_core.training import loop

    run = SimpleNamespace(validation=["held-out"], training={}, settings=SimpleNamespace(patience=0))
    trainer = SimpleNamespace(validation_nll=lambda _texts: (nll, 1))
    with pytest.raises(TrainingError, match="validation text's mean loss became .* at step 7; lower --lr"):
        loop._validate(run, trainer, 7)
    assert run.training == {}  # nothing recorded
