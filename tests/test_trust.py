"""Nothing a results folder or a model folder holds runs code, and every artifact is checked
against the checksum written when it was made: payloads planted where files are read, and
damaged artifacts of each kind, on a tiny real run."""

from __future__ import annotations

import base64
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from conftest import copy_project, planned_jobs, snakemake, tiny_config, write_config, write_jsonl

from shardmix import checksums, merging, scores, tokens, training
from shardmix import model as models
from shardmix import tokenizer as tokenization


class _Payload:
    """Unpickling this writes a marker file: it proves code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant_pickle(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(_Payload(marker)))


def _tok():
    return tokenization.train_bpe(["def f(x):\n    return x + 1\n" * 50, "print('hello world')\n" * 50], 300,
                                  "/tmp/shardmix-trust-tok")


def _model(folder, tok=None):
    tok = tok or _tok()
    arch = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16, "tie_embeddings": True,
            "init_seed": 0}
    lm = models.build_llama(arch, tok)
    models.save(lm, tok, folder)
    return lm, tok


def _train(folder, lm, tok, checkpoint_every=2):
    data = np.random.default_rng(0).integers(0, len(tok), 4000)
    cfg = {"batch_size": 4, "lr": 0.003, "schedule": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
           "weight_decay": 0.1, "grad_clip": 1.0, "seed": 0}
    return training.train(lm, [data], [512], cfg, 16, torch.device("cpu"), label="t", resume_dir=folder,
                          checkpoint_every=checkpoint_every)


def test_a_planted_resume_state_never_runs_and_a_damaged_one_starts_over(tmp_path, capfd):
    tok = _tok()
    reference = models.build_llama({"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16,
                                    "tie_embeddings": True, "init_seed": 0}, tok)
    _train(None, reference, tok, 0)

    folder = tmp_path / "out.resume"
    marker = tmp_path / "ran"
    _plant_pickle(folder / "state.pt", marker)  # the old pickled format, as an attacker would plant it
    lm = models.build_llama({"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "context": 16,
                             "tie_embeddings": True, "init_seed": 0}, tok)
    log = _train(folder, lm, tok)
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
    log = _train(folder, lm, tok)
    err = capfd.readouterr().err
    assert f"ignoring {folder}: damaged resume state ({state['tensors']} does not match its checksum" in err, err
    assert "resumed_from_step" not in log
    assert all(torch.equal(reference.state_dict()[k], lm.state_dict()[k]) for k in reference.state_dict())

    # a state.json pointing outside its folder is refused, not followed
    state["tensors"] = "../elsewhere.safetensors"
    (folder / "state.json").write_text(json.dumps(state))
    assert "resumed_from_step" not in _train(folder, lm, tok)
    assert "damaged resume state" in capfd.readouterr().err


def test_a_pickled_checkpoint_is_refused_and_never_run(tmp_path):
    folder = tmp_path / "bin-model"
    lm, tok = _model(folder)
    (folder / "model.safetensors").unlink()
    (folder / checksums.SUMS).unlink()  # a user's folder, not one shardmix wrote
    marker = tmp_path / "ran"
    _plant_pickle(folder / "pytorch_model.bin", marker)
    assert models.check_pretrained(folder, folder) == {"convert": True}
    with pytest.raises(models.ModelError, match=rf"{folder}: could not load its PyTorch checkpoint as plain tensors"):
        models.convert(folder, folder, tmp_path / "converted")
    assert not marker.exists() and not (tmp_path / "converted").exists()

    torch.save(lm.state_dict(), folder / "pytorch_model.bin")  # plain tensors convert as before
    assert models.convert(folder, folder, tmp_path / "converted") == torch.float32
    assert checksums.verify(tmp_path / "converted") is None and (tmp_path / "converted" / checksums.SUMS).exists()


MODELING = """
open({marker!r}, "w").write("ran")
from transformers import LlamaConfig
class EvilConfig(LlamaConfig):
    model_type = "evil"
"""


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_a_model_folder_that_asks_to_run_its_code_is_refused(tmp_path, where):
    folder = tmp_path / "remote"
    _model(folder)
    marker = tmp_path / "ran"
    (folder / "modeling_evil.py").write_text(MODELING.format(marker=str(marker)))
    config = json.loads((folder / where).read_text())
    config["auto_map"] = {"AutoConfig": "modeling_evil.EvilConfig", "AutoTokenizer": ["modeling_evil.EvilConfig", None]}
    (folder / where).write_text(json.dumps(config))
    message = rf"{folder / where}: 'auto_map' asks to run the folder's own Python code .*trust_remote_code=False"
    with pytest.raises((models.ModelError, ValueError), match=message):
        models.check_pretrained(folder, folder)
    with pytest.raises((models.ModelError, ValueError), match=message):
        tokenization.load(str(folder)) if where == "tokenizer_config.json" else models.load_causal_lm(folder)
    assert not marker.exists()


def test_a_remote_code_model_stops_the_workflow_before_any_job(tmp_path, data_dir):
    folder = tmp_path / "remote"
    _model(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    cfg = tiny_config(data_dir)
    cfg["model"] = {"source": "pretrained", "path": str(folder)}
    cfg["tokenizer"] = {"source": "pretrained"}
    work = copy_project(tmp_path / "p")
    write_config(work, cfg)
    proc = snakemake(work, "--dry-run", check=False)
    assert proc.returncode != 0
    assert "'auto_map' asks to run the folder's own Python code" in proc.stdout + proc.stderr


def test_seals_find_a_flipped_bit_quickly_after_a_write_and_fully_when_read(tmp_path):
    folder = tmp_path / "m"
    _model(folder)
    assert checksums.scan(tmp_path) == [] and checksums.verify(folder) is None
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the tensor data: the header still matches the size
    before = weights.stat()
    weights.write_bytes(bytes(data))
    found = checksums.scan(tmp_path)
    assert [(d.path, d.why) for d in found] == [(folder, f"model.safetensors does not match its checksum in "
                                                         f"{checksums.SUMS}")]
    # bit rot that keeps the modification time escapes the quick scan, never the full check on use
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert checksums.scan(tmp_path) == []
    lm = models.skeleton(folder)
    with pytest.raises(checksums.DamagedArtifact, match=rf"{folder}: damaged \(model.safetensors does not match its "
                                                        r"checksum in SHA256SUMS\); rerun snakemake, which rebuilds it"):
        merging.merge_into(lm, [folder])
    # marked for the next run: its scan now finds what only the full check could
    assert [d.path for d in checksums.scan(tmp_path)] == [folder]


def test_a_damaged_token_file_or_score_batch_is_named_and_found_by_the_next_scan(tmp_path):
    from shardmix import atomic

    with atomic.directory(tmp_path / "tokens") as out:
        tokens.save(out / "a.train.npy", np.arange(1000), 512)
    assert tokens.load(tmp_path / "tokens/a.train.npy")[999] == 999
    path = tmp_path / "tokens/a.train.npy"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(checksums.DamagedArtifact, match=r"tokens: damaged \(a.train.npy does not match"):
        tokens.load(path)

    batch = tmp_path / "g0/b.csv"
    atomic.write_text(batch, ",".join(scores.COLUMNS) + "\nm,seed,,,,s,1,1,1.0,2.7,1.0\n")
    assert len(scores.read_batch(batch)) == 1
    batch.write_text("")  # emptied, as a full disk or a bad copy leaves it
    with pytest.raises(checksums.DamagedArtifact, match=rf"{batch}: damaged \(does not match its checksum in "
                                                        r"b.csv.sha256\); rerun snakemake"):
        scores.read_batch(batch)
    assert {d.path for d in checksums.scan(tmp_path)} == {tmp_path / "tokens", batch}
    unsealed = tmp_path / "g0/old.csv"  # written before seals existed: still checked for what it holds
    unsealed.write_text("model,kind\n")
    with pytest.raises(checksums.DamagedArtifact, match=rf"{unsealed}: damaged score batch \(no column shards.*"
                                                        rf"moved to {unsealed}.damaged"):
        scores.read_batch(unsealed)
    assert not unsealed.exists()  # set aside: the next run sees the batch missing and scores it again


def test_a_full_disk_while_writing_tokens_is_named(tmp_path):
    target = tmp_path / "x.train.npy"
    target.symlink_to("/dev/full")  # every write fails with ENOSPC
    with pytest.raises(tokens.TokenFileError, match=rf"{target}: could not write token file: no space left on "
                                                    r"the device \(\d+ MiB free, 0.0 MiB needed\)"):
        tokens.save(target, np.arange(5000), 512)


# --- the same guarantees on a finished tiny run ---------------------------------------------------


def _copy(pipeline, tmp_path, name="damaged"):
    work = tmp_path / name
    shutil.copytree(pipeline, work, symlinks=True)  # times and .snakemake kept: the same checkout
    return work


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _damage_model(work):
    _flip(work / "results/models/shards/json/model.safetensors")


def _damage_tokens(work):
    path = work / "results/corpus/corpus/tokens/json.train.npy"
    path.write_bytes(path.read_bytes()[:-64])


def _damage_batch(work):
    (work / "results/scores/g0/email.000.csv").write_text("model,kind\n")


def _damage_groups(work):
    (work / "results/scores/eval_groups.json").write_text('{"groups": [["json", "ema')


def _damage_eval_set(work):
    _flip(work / "results/eval_sets/extra_urllib.npy")


DAMAGES = [  # (damage, what the dry run names, a job it must plan)
    (_damage_model, "results/models/shards/json: damaged (model.safetensors does not match", "train_shard"),
    (_damage_tokens, "results/corpus/corpus/tokens: damaged (json.train.npy does not match", "split_source"),
    (_damage_batch, "results/scores/g0/email.000.csv: damaged (does not match its checksum", "evaluate_batch"),
    (_damage_groups, "results/scores/eval_groups.json: damaged (does not match its checksum", "record_eval_groups"),
    (_damage_eval_set, "results/eval_sets/extra_urllib.npy: damaged (does not match its checksum",
     "tokenize_eval_set"),
]


def test_a_dry_run_after_damage_names_each_artifact_and_plans_its_rebuild(pipeline, tmp_path):
    work = _copy(pipeline, tmp_path)
    for damage, _, _ in DAMAGES:  # all at once: one dry run (they are found independently)
        damage(work)
    proc = snakemake(work, "--dry-run")
    jobs = planned_jobs(proc)
    for _, named, rule in DAMAGES:
        assert f"WARNING: {named}" in proc.stderr, (named, proc.stderr[-3000:])
        assert jobs.get(rule), (rule, jobs)


def test_a_damaged_score_batch_is_scored_again_to_the_same_table(pipeline, tmp_path):
    work = _copy(pipeline, tmp_path)
    _damage_batch(work)
    proc = snakemake(work, "results/scores.csv")  # the table only: what follows it is other tests' business
    assert "rule evaluate_batch" in proc.stdout + proc.stderr
    assert (work / "results/scores.csv").read_bytes() == (pipeline / "results/scores.csv").read_bytes()
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(snakemake(work, "--dry-run", "results/scores.csv"))


def test_models_snakemake_kept_no_record_of_are_still_compared_with_the_settings(pipeline, tmp_path, data_dir):
    """A kill after a model is saved and before Snakemake records the job (or a lost .snakemake)
    leaves a model without Snakemake's metadata; its own record (job.json) still compares it."""
    work = _copy(pipeline, tmp_path)
    unrecorded = ["results/models/shards/json", "results/models/full/email+json"]  # train_shard, train_full
    for model in unrecorded:
        assert json.loads((work / model / "job.json").read_text())["args"]
        metadata = work / ".snakemake/metadata" / base64.urlsafe_b64encode(model.encode()).decode()
        metadata.unlink()
    config = tiny_config(data_dir)
    config["shard_training"]["lr"] = 0.002
    write_config(work, config)
    proc = snakemake(work, "--dry-run")
    jobs = planned_jobs(proc)
    assert jobs["train_shard"] == 3 and jobs["train_full"] == 4, jobs
    for model in unrecorded:
        assert f"WARNING: {model} was made with other settings than this run's" in proc.stderr


def test_a_damaged_record_read_when_planning_is_named(pipeline, tmp_path):
    work = _copy(pipeline, tmp_path)
    (work / "results/corpus/foundation.json").write_text("{")
    proc = snakemake(work, "--dry-run", check=False)
    assert proc.returncode != 0
    assert "results/corpus/foundation.json: damaged" in proc.stdout + proc.stderr
    assert "Set `foundation` to those sources" in proc.stdout + proc.stderr
    shutil.copy(pipeline / "results/corpus/foundation.json", work / "results/corpus/foundation.json")
    (work / "results/corpus/corpus/manifest.json").write_text("{")
    proc = snakemake(work, "--dry-run", check=False)
    assert "results/corpus/corpus/manifest.json: damaged" in proc.stdout + proc.stderr
    assert "Delete results/corpus/corpus and rerun" in proc.stdout + proc.stderr
