"""What a rerun does: nothing when nothing changed, exactly what a setting changes, whole results after a kill or a signal, the parameters of runs of earlier versions kept."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import (
    ADDED_SHARD,
    DATA,
    copy_project,
    copy_run,
    grown_config,
    planned_jobs,
    snakemake,
    tiny_config,
    write_config,
)


def _set(path):
    def change(config):
        section, key, value = path
        config.setdefault(section, {})[key] = value
    return change


EVERY_SCORE, ALL_BUT_SEED = "every score", "every score but the seed's"


SEARCHED = {"search_target": 2, "best_mixtures": 1, "summary": 1}  # the tiny config's two search targets; the answers


RESCORED = {"collect_scores": 1, "scores_parquet": 1, "plot_scores": 1, "validate_proxy": 1, **SEARCHED}


ENSEMBLE = {"token_nll": 3}  # the ensemble's cache: the 3 shards of the trained mixtures, one eval-set group


RETRAINED = {"train_shard": 3, "train_full": 4, "evaluate_batch": ALL_BUT_SEED, **ENSEMBLE, **RESCORED}


VALIDATED = [["json", "email"], ["http", "json"], ["email", "http", "json"], {"json": 0.75, "http": 0.25}]


@pytest.mark.parametrize("change, expected", [
    (_set(("shard_training", "lr", 0.002)), RETRAINED),
    (_set(("shard_training", "tokens", 1024)), {**RETRAINED, "shard_sizes": 1}),
    (_set(("evaluation", "max_tokens", 768)), {"evaluate_batch": EVERY_SCORE, "seed_overlap": 1, **ENSEMBLE,
                                                **RESCORED}),
    (_set(("model", "context", 16)), {**RETRAINED, "train_seed": 1, "evaluate_batch": EVERY_SCORE, "shard_sizes": 1}),
    (_set(("seed_training", "lr", 0.004)), {**RETRAINED, "train_seed": 1, "evaluate_batch": EVERY_SCORE}),
    # a checkpoint: what follows the split is planned once it has run
    (_set(("sharding", "heldout_fraction", 0.25)), {"split_source": 1}),
    # a new shard of the source: one training; its 3 batches on both eval-set groups (the old
    # sets, and its held-out set, a new group); the 8 old batches on its held-out set
    (lambda c: c["sharding"]["include"].append(ADDED_SHARD),
     {"train_shard": 1, "evaluate_batch": 3 * 2 + 8, "shard_sizes": 1, "record_eval_groups": 1, "seed_overlap": 1,
      **ENSEMBLE, **RESCORED}),
    # the triple stays scored (it is validated); only the cost curve of the agreement changes
    (_set(("mixtures", "max_size", 2)), {"validate_proxy": 1, **SEARCHED}),
    (_set(("mixtures", "explicit", [["email", "http", "json"]])), {"validate_proxy": 1, **SEARCHED}),
    (_set(("mixtures", "methods", ["linear"])), {"evaluate_batch": 4, **RESCORED}),
    (_set(("validation", "explicit", [m for m in VALIDATED if m != ["email", "http", "json"]])),
     {"evaluate_batch": 1, **RESCORED}),
    (_set(("validation", "explicit", VALIDATED + [["email", "http"]])),
     {"train_full": 1, "evaluate_batch": 2, **RESCORED}),
    (_set(("search", "steps", 3)), SEARCHED),
    (_set(("runtime", "device", "cpu")), {}),
    (_set(("runtime", "gpus_per_job", 1)), {}),
    (_set(("runtime", "train_threads", 2)), {}),
    (_set(("shard_training", "checkpoint_every", 3)), {}),  # its old place: moved to runtime, with a message
    (_set(("runtime", "checkpoint_every", 3)), {}),
    (_set(("runtime", "log_every", 1)), {}),
    (_set(("runtime", "warm_start", False)), {}),
    (_set(("evaluation", "scores_csv", "always")), {}),  # the tiny table is written as CSV anyway
])
def test_each_setting_reruns_exactly_what_it_changes(pipeline, tmp_path, data_dir, change, expected):
    work = copy_run(pipeline, tmp_path / "changed-setting")
    config = tiny_config(data_dir)
    change(config)
    write_config(work, config)
    jobs = planned_jobs(snakemake(work, "--dry-run"))
    jobs.pop("all", None)
    assert set(jobs) == set(expected), jobs
    scores = pipeline / "results/scores"
    every = len(list(scores.rglob("*.csv")))
    counts = {EVERY_SCORE: every, ALL_BUT_SEED: every - len(list(scores.glob("*/seed.csv")))}
    for rule, count in expected.items():
        assert jobs[rule] == counts.get(count, count), (rule, jobs)


def test_runtime_given_on_the_command_line_is_read_as_numbers(pipeline, tmp_path):
    proc = snakemake(pipeline, "--dry-run", "--config", "runtime={gpus_per_job: 0, train_threads: 2}")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def _start(work, crash_at=None):
    """snakemake in its own process group, as a user's shell would start it."""
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    if crash_at:
        env["SHARDMIX_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=work, env=env,
                          capture_output=True, text=True, start_new_session=True)


def test_a_run_killed_while_training_saving_and_evaluating_finishes_like_an_uninterrupted_one(
        pipeline, grown, tmp_path, data_dir):
    reference = grown[0]  # the same change, uninterrupted
    config = grown_config(data_dir)
    config.setdefault("runtime", {})["checkpoint_every"] = 2  # not a result: reruns nothing

    work = copy_run(pipeline, tmp_path / "killed")
    write_config(work, config)
    # killed while saving the new model (its training had saved resumable states at steps 2, 4, 6),
    # then while scoring a batch
    for crash_at in (f"save:{ADDED_SHARD}", f"evaluate:results/scores/g0/{ADDED_SHARD}.000.csv"):
        proc = _start(work, crash_at)
        assert proc.returncode == -signal.SIGKILL, (crash_at, proc.stderr[-2000:])
        locked = snakemake(work, check=False)
        assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
        snakemake(work, "--unlock")
    log = (work / f"logs/train_shard/{ADDED_SHARD}.log").read_text()
    assert "resumed from step 6" in log  # the rerun continued from the last resumable state
    snakemake(work)
    assert not list((work / "results").rglob("*.partial")) and not list((work / "results").rglob("*.resume"))
    new_model = f"results/models/shards/{ADDED_SHARD}/model.safetensors"
    assert (work / new_model).read_bytes() == (reference / new_model).read_bytes()
    pd.testing.assert_frame_equal(pd.read_csv(work / "results/scores.csv", keep_default_na=False),
                                  pd.read_csv(reference / "results/scores.csv", keep_default_na=False))


def _jobs_of(work: Path) -> list[int]:
    """Processes still running a job script of the project in `work` (warm children included:
    they carry the job's working directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd") == str(work) and \
                    b"workflow_scripts" in (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def _wait_for(path: Path, text: str, proc, output, seconds: float = 180) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} never showed {text!r}: {path.read_text()[-2000:] if path.exists() else 'no log'}\n"
                         f"{output() if proc.poll() is not None else ''}")


def test_signals_stop_a_training_job_whole_and_its_rerun_resumes(pipeline, grown, tmp_path, data_dir):
    """SIGINT to Snakemake (what Ctrl-C sends) and SIGTERM to a job's shell: the training job
    saves its state and ends at once, nothing outlives the run, no model folder appears
    afterwards; the rerun resumes and ends with the uninterrupted run's weights."""
    import time

    work = copy_run(grown[0], tmp_path / "signalled")
    config = grown_config(data_dir)
    config.setdefault("runtime", {})["checkpoint_every"] = 0  # only the signal saves a state
    write_config(work, config)
    model = f"results/models/shards/{ADDED_SHARD}"
    shutil.rmtree(work / model)  # trained again, signalled twice on the way
    log = work / f"logs/train_shard/{ADDED_SHARD}.log"
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", SHARDMIX_STEP_SECONDS="1")
    for target, seen in (("snakemake", "step 1/"), ("job", "resumed from step")):
        log.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", model], cwd=work, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        _wait_for(log, seen, proc, lambda: proc.communicate()[0][-3000:])
        jobs = _jobs_of(work)
        assert jobs, "no training job found"
        os.kill(proc.pid if target == "snakemake" else min(jobs), signal.SIGINT if target == "snakemake" else signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
        assert proc.returncode != 0, output[-3000:]
        time.sleep(2)
        assert _jobs_of(work) == [], (target, output[-3000:])
        text = log.read_text()
        assert "state of step" in text and "exit 75" in text, text[-2000:]
        assert not (work / model).exists() and (work / f"{model}.resume/state.json").exists()
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", model], cwd=work, capture_output=True,
                          text=True, env={k: v for k, v in env.items() if k != "SHARDMIX_STEP_SECONDS"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from step" in log.read_text()
    weights = f"{model}/model.safetensors"
    assert (work / weights).read_bytes() == (grown[0] / weights).read_bytes()


def test_a_damaged_checkpoint_is_named_before_it_is_merged(pipeline, tmp_path):
    from shardmix import checksums, merging

    model = tmp_path / "json"
    shutil.copytree(pipeline / "results/models/shards/json", model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(checksums.DamagedArtifact, match=rf"{model}: damaged \(model.safetensors does not match"):
        merging.merge_into(None, [model])
    (model / checksums.SUMS).unlink()  # a checkpoint without a seal: its header is still checked
    with pytest.raises(merging.MergeError, match=rf"{weights}: damaged or truncated checkpoint .*delete {model} and "
                                               "rerun snakemake"):
        merging.merge_into(None, [model])
    weights.write_bytes(b"\x09\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(merging.MergeError, match="unreadable header"):
        merging.merge_into(None, [model])


def test_own_config_file_inherits_nothing_from_the_demo(tmp_path, data_dir):
    work = copy_project(tmp_path / "own")
    shutil.copy(copy_project.__globals__["ROOT"] / "config.yaml", work / "config.yaml")  # the demo's
    own = tiny_config(data_dir)
    (tmp_path / "my.yaml").write_text(json.dumps(own))
    jobs = planned_jobs(snakemake(work, "--dry-run", "--configfile", str(tmp_path / "my.yaml")))
    assert "build_demo_corpus" not in jobs and jobs["split_source"] == 1
    empty = snakemake(work, "--report", "results/report.html", "--configfile", str(tmp_path / "my.yaml"), check=False)
    assert empty.returncode != 0 and "nothing to report" in empty.stdout + empty.stderr
    assert not (work / "results/report.html").exists()


# jobs an upgrade reruns on purpose, because their result changed (docs/reruns.md: upgrading)
CHANGED_RESULTS = {
    "collect_scores": "scores.csv gained budget_tokens",
    "validate_proxy": "every proxy within groups of equal budget, with decision metrics and intervals",
    "search_target": "the search keeps to search.max_epochs at search.budget_tokens",
    "best_mixtures": "flags, budget and repetition of each pick",
}


# rules renamed since (a rule's name is no rerun trigger: the renamed rule's outputs stand)
RENAMED = {"seed_model": "train_seed", "agreement": "validate_proxy", "demo_corpus": "build_demo_corpus"}


def test_a_run_of_the_version_before_the_planner_package_keeps_its_parameters(pipeline, data_dir):
    """The compared parameters of every job of the tiny run, as the version before shardmix.plan
    (4533a1f) recorded them: an upgrade reruns a finished run's job only where one differs (or
    where its result changed on purpose: CHANGED_RESULTS). Models and scores are never among them."""
    import base64

    before = (DATA / "params_before_planner.json").read_text()
    before = json.loads(before.replace("{data}", str(data_dir)))
    metadata = pipeline / ".snakemake/metadata"
    now = {base64.urlsafe_b64decode(f.name).decode(): json.loads(f.read_text()) for f in metadata.iterdir()}
    assert len(before) == 38
    kept = 0
    for output, recorded in before.items():
        rule = RENAMED.get(recorded["rule"], recorded["rule"])
        if rule not in CHANGED_RESULTS:  # (agreement_naive.csv is gone: agreement.csv holds it)
            assert (now[output]["rule"], now[output]["params"]) == (rule, recorded["params"]), output
            kept += 1
    assert kept == 38 - 2 - 7 - 2 - 2  # every training, split, scoring and record job




def test_models_snakemake_kept_no_record_of_are_still_compared_with_the_settings(pipeline, tmp_path, data_dir):
    """A kill after a model is saved and before Snakemake records the job (or a lost .snakemake)
    leaves a model without Snakemake's metadata; its own record (job.json) still compares it."""
    work = copy_run(pipeline, tmp_path / "damaged")
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
