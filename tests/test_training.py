"""The training loop's ways of running that must not change what it computes: micro-batch
accumulation, the lean loss, attention and activation checkpointing, and stopping on a signal
(then resuming) mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_bad_input import _tok

from shardmix import loss, preemption, training
from shardmix import model as models

CFG = {"batch_size": 16, "lr": 0.003, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
       "weight_decay": 0.1, "grad_clip": 1.0, "seed": 0}


def _model(tie: bool = True):
    arch = {"hidden_size": 32, "layers": 2, "heads": 2, "ffn_size": 64, "context": 16, "tie_embeddings": tie,
            "init_seed": 0}
    return models.build_llama(arch, _tok())


def _data():
    return np.random.default_rng(0).integers(0, len(_tok()), 6000)


def _run(options=training.Options(), cfg=CFG, tie=True, **kwargs):
    lm = _model(tie)
    log = training.train(lm, [_data()], [16 * 16 * 6], cfg, 16, torch.device("cpu"), label="t", options=options,
                         **kwargs)
    return lm.state_dict(), log


@pytest.mark.parametrize("tie", [True, False])
def test_the_lean_loss_equals_the_plain_one_with_its_gradients(monkeypatch, tie):
    monkeypatch.setattr(loss, "CHUNK_VALUES", 7 * len(_tok()))  # 7 positions per chunk: many chunks, one ragged
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
    assert plain == pytest.approx(y.numel() * np.log(len(_tok())), rel=0.05)  # an untrained model: near uniform
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
    env = dict(os.environ, PYTHONPATH=f"{tests}:{Path(tests).parent}")
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


def test_the_gpu_bench_runs_in_smoke_mode_on_any_device(tmp_path):
    """bench/gpu.py (`make bench-gpu`) with tiny models: both compile settings train to the same
    loss, and mixtures are scored from a resident pool; its figures are written as JSON."""
    import json

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--out", str(out)], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    off, on = result["training"]["smoke, compile off"], result["training"]["smoke, compile on"]
    assert "error" not in off and "error" not in on, (off, on)
    assert off["tokens_per_s"] > 0 and off["flops_per_token"] > 0 and off["steps"] == 4
    assert on["final_loss"] == pytest.approx(off["final_loss"], rel=1e-4)
    assert result["scoring"]["smoke"]["mixtures"] == 11  # every 2-4 of 4 members


HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from shardmix import gpus
print(gpus.claim(3, {folder!r}), flush=True)
time.sleep(60)
"""


def test_jobs_on_a_machine_with_several_gpus_each_claim_their_own(tmp_path):
    from shardmix import gpus

    root = str(Path(__file__).resolve().parent.parent)
    holders = [subprocess.Popen([sys.executable, "-c", HOLDER.format(root=root, folder=str(tmp_path))],
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        held = sorted(int(h.stdout.readline()) for h in holders)
        assert held == [0, 1]
        assert gpus.claim(3, tmp_path) == 2  # the one left
        gpus.release()
        holders[0].kill()  # a job that ends, however, frees its GPU
        holders[0].wait()
        assert gpus.claim(3, tmp_path) in held
    finally:
        gpus.release()
        for h in holders:
            h.kill()
            h.wait()


def test_the_paper_size_example_settings_are_a_valid_config(data_dir):
    import yaml
    from conftest import tiny_config

    from shardmix import config

    example = yaml.safe_load((Path(__file__).resolve().parent.parent / "examples/paper-130m.yaml").read_text())
    cfg = config.check({**tiny_config(data_dir), **example})
    assert cfg["shard_training"]["batch_size"] * cfg["model"]["context"] == 1024 * 2048
    assert cfg["shard_training"]["batch_size"] % cfg["runtime"]["micro_batch_size"] == 0
    assert cfg["runtime"]["compile"] == "auto" and cfg["runtime"]["gpus_per_job"] == 1
