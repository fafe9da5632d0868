"""The SLURM profile on a real (local) SLURM cluster."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pandas as pd
import pytest
from helpers import copy_project, ran_jobs, snakemake, tiny_config, write_config


def _cluster_up() -> str | None:
    if not shutil.which("sinfo") or not shutil.which("sbatch"):
        return "SLURM is not installed (Debian packages slurm-wlm and munge; .ci/run installs them)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True)
    if proc.returncode != 0 or not re.search(r"\b(idle|mixed|allocated)\b", proc.stdout):
        return f"no SLURM cluster answers (start one with .ci/slurm-cluster start, as root): {proc.stderr.strip()}"
    return None


pytestmark = pytest.mark.skipif(_cluster_up() is not None, reason=str(_cluster_up()))


def _small_config(data_dir):
    config = tiny_config(data_dir)
    config["sharding"]["include"] = ["json"]
    config["eval_sets"] = []
    config["mixtures"] = {"max_size": 2}
    del config["validation"], config["search"]
    return config


def test_the_slurm_profile_runs_every_job_on_the_cluster_and_scores_like_a_local_run(tmp_path, data_dir, pipeline):
    cluster = copy_project(tmp_path / "cluster")
    write_config(cluster, _small_config(data_dir))
    start = time.perf_counter()
    proc = snakemake(cluster, "--profile", "profiles/slurm", "--workflow-profile", "profiles/slurm-cpu-only",
                     "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
                     "--jobs", "4", "--latency-wait", "5")
    seconds = time.perf_counter() - start
    text = proc.stdout + proc.stderr
    run_id = re.search(r"SLURM run ID: ([0-9a-f-]+)", text).group(1)

    submitted = set(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", text))
    accounting = subprocess.run(["sacct", "--completion", "--parsable2", "--format=JobID,JobName,Partition,State"],
                                capture_output=True, text=True, check=True).stdout.splitlines()
    ours = [line.split("|") for line in accounting[1:] if line.split("|")[1] == run_id]
    summary = pd.DataFrame(ours, columns=["job", "name", "partition", "state"])
    print(f"\nsacct --completion for run {run_id}:\n{summary.groupby(['partition', 'state']).size()}\n"
          f"SLURM run {seconds:.0f}s")
    # every job but the local ones (records, small tables: Snakefile's localrules) ran as a SLURM
    # job, and completed there
    ran = ran_jobs(proc)
    local = sum(ran.get(rule, 0) for rule in ("all", "record_foundation", "record_validation_sample",
                                              "record_eval_groups", "best_mixtures", "shard_sizes", "summary"))
    assert len(submitted) == sum(ran.values()) - local
    assert set(summary["job"]) == submitted
    assert (summary["state"] == "COMPLETED").all() and (summary["partition"] == "cpu").all()

    # the local run of the tiny config trained the same seed and shard models (same split, budget
    # and threads), so every score of this smaller run equals the local one
    on_cluster = pd.read_csv(cluster / "results/scores.csv", keep_default_na=False)
    local = pd.read_csv(pipeline / "results/scores.csv", keep_default_na=False)
    local = local.merge(on_cluster[["model", "eval_set"]], on=["model", "eval_set"])
    assert len(local) == len(on_cluster) == 2  # seed and shard/json on json's held-out set
    key = ["model", "eval_set"]
    pd.testing.assert_frame_equal(on_cluster.sort_values(key).reset_index(drop=True),
                                  local.sort_values(key).reset_index(drop=True))
