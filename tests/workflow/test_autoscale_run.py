"""AutoScale added to a finished run."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from helpers import AUTOSCALE_DOMAINS, autoscale_config, planned_jobs, ran_jobs, snakemake, write_config


@pytest.fixture(scope="module")
def autoscaled(tmp_path_factory, pipeline, data_dir):
    """The finished tiny run with AutoScale added: (project, jobs the run ran)."""
    work = tmp_path_factory.mktemp("autoscale") / "project"
    shutil.copytree(pipeline, work, symlinks=True)
    write_config(work, autoscale_config(data_dir))
    return work, ran_jobs(snakemake(work))


def test_autoscale_added_to_a_finished_run(autoscaled):
    work, jobs = autoscaled
    k = len(AUTOSCALE_DOMAINS)
    # real DDO trains 1 + 2K runs per small scale, the check one per weighting; the proxy nothing
    assert jobs.get("autoscale_train") == 2 * (1 + 2 * k)
    assert jobs.get("autoscale_check_train") == 4
    assert not {"train_shard", "train_seed", "train_full", "evaluate_batch"} & set(jobs)
    out = work / "results" / "autoscale"
    weights = pd.read_csv(out / "weights.csv")
    assert list(weights.columns) == ["method", "scale_tokens", "domain", "weight"]
    budget = 2048
    assert set(weights["scale_tokens"]) == {2 * budget, 4 * budget, 8 * budget, 16 * budget}
    assert set(weights["method"]) == {"real", "proxy"} and set(weights["domain"]) == set(AUTOSCALE_DOMAINS)
    assert weights.groupby(["method", "scale_tokens"])["weight"].sum().to_numpy() == pytest.approx(1.0)
    fits = pd.read_csv(out / "fits.csv")
    # three points, three parameters, but a monotone curve: a U-shaped response is fitted, not hit
    assert len(fits) == 2 * 2 * k and np.isfinite(fits[["a", "b", "c", "rmse"]].to_numpy()).all()
    check = pd.read_csv(out / "check.csv")
    assert list(check["weighting"]) == ["predicted", "predicted_proxy", "uniform", "small_scale_optimum"]
    assert (check["sum_ppl"] == check["extra_urllib"]).all() and (check["sum_ppl"] > 1).all()
    cost = pd.read_csv(out / "cost.csv").set_index("method")
    assert cost.loc["proxy", "trained_models"] == k and cost.loc["real", "trained_models"] == 2 * (1 + 2 * k)
    # real DDO's tokens: per scale N (uniform) + K N (1 + 2/K) (x3) + K N (1 - 2/(3K)) (x1/3)
    expected = sum(n * (1 + k + 2 + k - 2 / 3) for n in (2 * budget, 4 * budget))
    assert cost.loc["real", "training_tokens"] == pytest.approx(expected, rel=0.05)
    assert (out / "weights.png").stat().st_size > 10_000


def test_the_proxys_uniform_run_is_the_runs_uniform_merge(autoscaled):
    """At N1 each domain's share is one unit: the proxy's uniform run is the linear merge of the
    two shard models the run scored as a mixture, so the two ppl agree."""
    work, _ = autoscaled
    proxy = pd.read_csv(work / "results" / "autoscale" / "scores" / "proxy-4096.csv")
    merged = pd.read_csv(work / "results" / "scores.csv")
    ours = proxy[proxy["model"] == "autoscale/proxy/4096/uniform"].set_index("eval_set")["ppl"]
    theirs = merged[merged["model"] == "merged/http+json"].set_index("eval_set")["ppl"]
    assert ours["extra_urllib"] == pytest.approx(theirs["extra_urllib"], rel=1e-5)
    # the real x3 run of a domain trained on more of it than the uniform run
    real = pd.read_csv(work / "results" / "autoscale" / "scores" / "real-4096.csv")
    assert real["model"].str.endswith("json-x3").sum() == 1


def test_autoscale_reruns_nothing(autoscaled):
    work, _ = autoscaled
    assert planned_jobs(snakemake(work, "-n")) == {}


def test_a_second_study_in_its_own_folder_shares_the_shard_models_and_leaves_the_first(autoscaled, tmp_path,
                                                                                          data_dir):
    work, _ = autoscaled
    copy = tmp_path / "project"
    shutil.copytree(work, copy, symlinks=True)
    config = autoscale_config(data_dir)
    config["autoscale"].update(targets=["http"], folder="results/study_http")
    write_config(copy, config)
    jobs = planned_jobs(snakemake(copy, "-n"))  # up to the fit, a checkpoint: its check follows it
    assert jobs.get("autoscale_train") == 2 * (1 + 2 * len(AUTOSCALE_DOMAINS)) and jobs.get("autoscale_fit") == 1
    assert not {"train_shard", "train_seed", "split_source", "evaluate_batch"} & set(jobs)
    out = snakemake(copy, "-n", "--printshellcmds").stdout
    assert "results/study_http/models/4096/uniform" in out and "results/autoscale/models" not in out


def test_unknown_domain_or_target_stops_the_run_naming_both(tmp_path, pipeline, data_dir):
    work = tmp_path / "project"
    shutil.copytree(pipeline, work, symlinks=True)
    config = autoscale_config(data_dir)
    config["autoscale"].update(domains=["json", "nosuch"], targets=["extra_urllib", "nowhere"])
    write_config(work, config)
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "autoscale.domains[1]: 'nosuch'" in text and "autoscale.targets names 'nowhere'" in text
