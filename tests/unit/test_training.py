"""Unit tests of shardmix.training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, TESTS, code_tokenizer, plant_pickle, tiny_tokenizer, whole_documents

from shardmix import loss
from shardmix import model as models
from shardmix import preemption, training

CFG = {"batch_size": 16, "lr": 0.003, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
       "weight_decay": 0.1, "grad_clip": 1.0, "seed": 0}


def _model(tie: bool = True):
    arch = {"hidden_size": 32, "layers": 2, "heads": 2, "ffn_size": 64, "context": 16, "tie_embeddings": tie,
            "init_seed": 0}
    return models.build_llama(arch, tiny_tokenizer())


def _data():
    return np.random.default_rng(0).integers(0, len(tiny_tokenizer()), 6000)


def _run(options=training.Options(), cfg=CFG, tie=True, **kwargs):
    lm = _model(tie)
    log = training.train(lm, [_data()], [16 * 16 * 6], cfg, 16, torch.device("cpu"), label="t", options=options,
                         **kwargs)
    return lm.state_dict(), log


@pytest.mark.parametrize("tie", [True, False])
def test_the_lean_loss_equals_the_plain_one_with_its_gradients(monkeypatch, tie):
    monkeypatch.setattr(loss, "CHUNK_VALUES", 7 * len(tiny_tokenizer()))  # 7 positions per chunk: many chunks, one ragged
    lm = _model(tie)
    assert loss.supports(lm)
    ids = torch.from_numpy(_data()[:4 * 17].reshape(4, 17))
    x, y = ids[:, :-1], ids[:, 1:]
    grads = []
    for nll in (lambda: loss.plain_nll(lm, x, y), lambda: loss.lean_nll(lm, lm.base_model, x, y)):
        lm.zero_grad()
        value = nll()
        (value / y.numel()).backward()
        grads.append((value.item(), {n: p.grad.clone() for n, p in lm.named_parameters()}))
    (plain, plain_grads), (lean, lean_grads) = grads
    assert lean == pytest.approx(plain, rel=1e-6)
    assert plain == pytest.approx(y.numel() * np.log(len(tiny_tokenizer())), rel=0.05)  # an untrained model: near uniform
    for name, g in plain_grads.items():
        torch.testing.assert_close(lean_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_accumulated_micro_batches_equal_one_batch():
    whole, whole_log = _run()
    accumulated, log = _run(training.Options(micro_batch_size=4))
    assert log["steps"] == whole_log["steps"] == 6 and log["tokens"] == whole_log["tokens"]
    np.testing.assert_allclose(log["loss"], whole_log["loss"], rtol=1e-5)
    for k in whole:
        torch.testing.assert_close(accumulated[k], whole[k], rtol=1e-4, atol=1e-6, msg=k)
    # a micro-batch that does not divide the batch: the last pass is smaller, the mean the same
    ragged, ragged_log = _run(training.Options(micro_batch_size=5))
    np.testing.assert_allclose(ragged_log["loss"], whole_log["loss"], rtol=1e-5)


def test_attention_checkpointing_and_the_plain_loss_change_speed_not_results():
    reference, log = _run()
    lm_attention = _model().config._attn_implementation
    for options in (training.Options(attention="eager"), training.Options(activation_checkpointing=True),
                    training.Options(lean_loss=False, micro_batch_size=8)):
        weights, other = _run(options)
        np.testing.assert_allclose(other["loss"], log["loss"], rtol=1e-5, err_msg=str(options))
        for k in reference:
            torch.testing.assert_close(weights[k], reference[k], rtol=1e-4, atol=1e-6, msg=f"{options}: {k}")
    lm = _model()
    training.train(lm, [_data()], [512], CFG, 16, torch.device("cpu"),
                   options=training.Options(attention="eager", activation_checkpointing=True))
    assert lm.config._attn_implementation == lm_attention and not lm.is_activation_checkpointing


def test_options_come_from_a_jobs_run_settings():
    options = training.Options.from_settings({"checkpoint_every": 5, "micro_batch_size": 2, "compile": None,
                                              "checkpoint_minutes": 1.5})
    assert options == training.Options(micro_batch_size=2, checkpoint_minutes=1.5)
    assert not options.compiled(torch.device("cpu")) and options.compiled(torch.device("cuda"))


STOPPABLE = """
import sys
sys.path.insert(0, {tests!r})
from test_training import _run, training
_run(training.Options(micro_batch_size=4), cfg={cfg!r}, resume_dir={folder!r})
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_saves_the_state_and_the_rerun_ends_with_the_uninterrupted_weights(tmp_path, sig):
    cfg = {**CFG, "batch_size": 16}
    reference, _ = _run(training.Options(micro_batch_size=4), cfg=cfg)
    folder = tmp_path / "resume"
    tests = str(Path(__file__).parent)
    env = dict(os.environ, PYTHONPATH=f"{tests}:{TESTS}:{ROOT}")
    proc = subprocess.Popen([sys.executable, "-c", STOPPABLE.format(tests=tests, cfg=cfg, folder=str(folder))],
                            env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # the first step's line: training runs
        if "[t] step 1/" in line:
            break
    proc.send_signal(sig)
    rest = proc.stderr.read()
    assert proc.wait(60) == preemption.EXIT_CODE, rest[-3000:]
    assert f"{signal.Signals(sig).name}: state of step" in rest and (folder / "state.json").exists()
    resumed, log = _run(training.Options(micro_batch_size=4), cfg=cfg, resume_dir=folder)
    assert 1 <= log["resumed_from_step"] <= 6 and len(log["loss"]) == 6
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


def test_outside_a_training_loop_a_signal_ends_the_process_as_before():
    with preemption.StopRequests() as stop:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)
        assert stop.requested
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL








def _train_saved(folder, lm, tok, checkpoint_every=2):
    data = np.random.default_rng(0).integers(0, len(tok), 4000)
    cfg = {"batch_size": 4, "lr": 0.003, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
           "weight_decay": 0.1, "grad_clip": 1.0, "seed": 0}
    return training.train(lm, [data], [512], cfg, 16, torch.device("cpu"), label="t", resume_dir=folder,
                          checkpoint_every=checkpoint_every)


def test_a_planted_resume_state_never_runs_and_a_damaged_one_starts_over(tmp_path, capfd):
    tok = code_tokenizer()
    reference = models.build_llama({"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16,
                                    "tie_embeddings": True, "init_seed": 0}, tok)
    _train_saved(None, reference, tok, 0)

    folder = tmp_path / "out.resume"
    marker = tmp_path / "ran"
    plant_pickle(folder / "state.pt", marker)  # the old pickled format, as an attacker would plant it
    lm = models.build_llama({"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16,
                             "tie_embeddings": True, "init_seed": 0}, tok)
    log = _train_saved(folder, lm, tok)
    assert not marker.exists()
    assert "pickled resume states (earlier shardmix versions) are never loaded" in capfd.readouterr().err
    assert "resumed_from_step" not in log
    assert all(torch.equal(reference.state_dict()[k], lm.state_dict()[k]) for k in reference.state_dict())

    # a state of this run (steps 2..6 were saved), then damaged: named, set aside, trained from zero
    state = json.loads((folder / "state.json").read_text())
    tensors = folder / state["tensors"]
    tensors.write_bytes(tensors.read_bytes()[:-100])
    lm = models.build_llama({"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16,
                             "tie_embeddings": True, "init_seed": 0}, tok)
    log = _train_saved(folder, lm, tok)
    err = capfd.readouterr().err
    assert f"ignoring {folder}: damaged resume state ({state['tensors']} does not match its checksum" in err, err
    assert "resumed_from_step" not in log
    assert all(torch.equal(reference.state_dict()[k], lm.state_dict()[k]) for k in reference.state_dict())

    # a state.json pointing outside its folder is refused, not followed
    state["tensors"] = "../elsewhere.safetensors"
    (folder / "state.json").write_text(json.dumps(state))
    assert "resumed_from_step" not in _train_saved(folder, lm, tok)
    assert "damaged resume state" in capfd.readouterr().err


DOCS = whole_documents()


def test_training_is_deterministic_on_cpu_and_lowers_the_loss():
    tok = tiny_tokenizer()
    ids = np.concatenate([np.asarray(tok(d["text"])["input_ids"]) for d in DOCS])
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 32,
            "tie_embeddings": True, "init_seed": 0}
    cfg = {"batch_size": 8, "lr": 0.01, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
           "weight_decay": 0.1, "grad_clip": 1.0, "seed": 0, "log_every": 100}
    runs = []
    for _ in range(2):
        lm = models.build_llama(arch, tok)
        log = training.train(lm, [ids], [32 * 8 * 12], cfg, 32, torch.device("cpu"))
        runs.append((lm.state_dict(), log))
    (a, log), (b, _) = runs
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert log["steps"] == 12 and log["tokens"] == 32 * 8 * 12
    assert np.mean(log["loss"][-3:]) < np.mean(log["loss"][:3])


def test_equal_budget_per_source_in_a_mixture():
    rng = np.random.default_rng(0)
    plan = training.window_plan([1000, 100_000], [20, 20], 32, rng)
    assert np.bincount(plan[:, 0]).tolist() == [20, 20]
    # a small source is cycled: 1000 tokens hold 31 windows, all used before any repeats
    assert len(set(plan[plan[:, 0] == 0][:, 1])) == 20


CRASHING_TRAINER = """
import sys, torch
sys.path.insert(0, {root!r})
from test_training import _resumable_run
_resumable_run({folder!r}, checkpoint_every=2)
"""


def _resumable_run(folder, checkpoint_every, inputs=()):
    """Train a tiny model for 8 steps; return its weights."""
    tok = tiny_tokenizer()
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16, "tie_embeddings": True,
            "init_seed": 0}
    lm = models.build_llama(arch, tok)
    data = np.random.default_rng(0).integers(0, len(tok), 4000)
    cfg = {"batch_size": 4, "lr": 0.003, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
           "weight_decay": 0.1, "grad_clip": 1.0, "seed": 0}
    log = training.train(lm, [data], [512], cfg, 16, torch.device("cpu"), label="t", resume_dir=folder,
                         checkpoint_every=checkpoint_every, inputs=inputs)
    return lm.state_dict(), log


def test_training_killed_midway_resumes_to_the_same_weights(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    reference, _ = _resumable_run(None, 0)
    folder = str(tmp_path / "resume")
    tests = str(Path(__file__).parent)
    env = dict(os.environ, SHARDMIX_CRASH_AT="step:t:7", PYTHONPATH=f"{tests}:{TESTS}:{ROOT}")
    proc = subprocess.run([sys.executable, "-c", CRASHING_TRAINER.format(root=tests, folder=folder)], env=env,
                          start_new_session=True, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (tmp_path / "resume/state.json").exists() and (tmp_path / "resume/state-6.safetensors").exists()
    other_seed = tmp_path / "seed.bin"
    other_seed.write_bytes(b"a retrained seed")
    _, fresh = _resumable_run(folder, 0, inputs=[other_seed])  # another input: the state is not its own
    assert "resumed_from_step" not in fresh
    resumed, log = _resumable_run(folder, 2)
    assert log["resumed_from_step"] == 6 and len(log["loss"]) == log["steps"] == 8
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)


def test_one_pass_over_the_data_is_not_reported_as_cycling():
    from shardmix.training import _reuse

    assert _reuse(1656, 1655) == ("its share (1656 windows of context + 1 tokens) is 1 more than its 1655 windows; "
                                  "1 of them are drawn twice")
    assert _reuse(3000, 1000) == "its share (3000 windows) exceeds its 1000 windows; cycling its data 3.00 times"
