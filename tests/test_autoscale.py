"""AutoScale: the fit and the optimiser on synthetic data with a known optimum, the projection,
the proxy's unit weights, and DDO (real and proxy) with its check added to the finished tiny run."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import planned_jobs, ran_jobs, snakemake, tiny_config, write_config
from shardmix import autoscale

DOMAINS = ["json", "http"]
CURVES = [(0.5, 0.8, 0.4), (0.2, 0.3, 0.6), (2.0, 1.5, 0.7)]  # (a, b, c) per domain


def kkt_optimum(curves, total):
    """The exact optimum of sum_i (x_i + a_i)^(-b_i) + c_i over x >= 0, sum x = total: where every
    used domain's derivative equals the same -lambda (bisection on lambda)."""
    lo, hi = 1e-12, 1e6
    for _ in range(300):
        lam = (lo * hi) ** 0.5
        x = np.array([max(0.0, (b / lam) ** (1 / (b + 1)) - a) for a, b, _ in curves])
        lo, hi = (lam, hi) if x.sum() > total else (lo, lam)
    return x


def test_fit_recovers_the_curve_it_was_sampled_from():
    x = [1 / 3, 0.5, 1, 2, 3, 5]
    for a, b, c in CURVES:
        fit = autoscale.fit_ratio(x, autoscale.ratio_curve(x, a, b, c))
        assert (fit["a"], fit["b"], fit["c"]) == pytest.approx((a, b, c), rel=1e-4)
        assert fit["rmse"] < 1e-8


def test_fit_through_three_points_interpolates_and_allows_a_harmful_domain():
    x = [1, 3, 1 / 3]
    harmful = [1.0, 1.04, 0.985]  # more of this domain raises the target loss
    fit = autoscale.fit_ratio(x, harmful)
    assert autoscale.ratio_curve(x, fit["a"], fit["b"], fit["c"]) == pytest.approx(harmful, abs=1e-6)
    assert fit["b"] < 0


def test_optimiser_finds_the_known_optimum():
    fits = [{"a": a, "b": b, "c": c} for a, b, c in CURVES]
    for total in (3.0, 1.0, 10.0):
        assert autoscale.optimise(fits, total) == pytest.approx(kkt_optimum(CURVES, total), abs=1e-5)
    # a domain whose optimum lies on the boundary gets exactly nothing
    steep = [(0.1, 2.0, 0.0), (5.0, 0.2, 0.0)]
    x = autoscale.optimise([{"a": a, "b": b, "c": c} for a, b, c in steep], 1.0)
    assert x == pytest.approx(kkt_optimum(steep, 1.0), abs=1e-6) and x[1] == 0.0


def test_ddo_from_run_losses_recovers_the_optimum_of_the_curves_behind_them():
    """Run losses made from known per-domain curves (each 1 at x = 1): DDO fits them back and
    lands on their exact optimum."""
    domains, factors, uniform = ["a", "b", "c"], [3.0, 1 / 3, 2.0, 0.5], 2.5
    curves = [(a, b, 1 - (1 + a) ** -b) for a, b, _ in CURVES]
    losses = {}
    for run, multiples in autoscale.ddo_runs(domains, factors).items():
        i, x = next(((i, m) for i, m in enumerate(multiples.values()) if m != 1.0), (0, 1.0))
        losses[run] = uniform * float(autoscale.ratio_curve(x, *curves[i]))
    result = autoscale.ddo(domains, factors, losses)
    assert len(losses) == 1 + len(factors) * len(domains)
    assert list(result["multiples"].values()) == pytest.approx(kkt_optimum(curves, 3.0), abs=1e-4)
    assert [f["rmse"] for f in result["fits"]] == pytest.approx([0, 0, 0], abs=1e-8)


def test_projection_continues_each_domains_geometric_growth():
    small, large = {"a": 10.0, "b": 20.0}, {"a": 15.0, "b": 40.0}  # at 30 and 60 tokens
    # one more doubling: a grows 1.5x again, b 2x (AutoScale's N3* = N2* (N2*/N1*))
    assert autoscale.project(small, large, 30, 60, 120) == pytest.approx({"a": 22.5 / 102.5, "b": 80 / 102.5})
    # two doublings, and half of one
    assert autoscale.project(small, large, 30, 60, 240)["a"] == pytest.approx(33.75 / (33.75 + 160))
    half = autoscale.project(small, large, 30, 60, 60 * 2 ** 0.5)
    assert half["a"] == pytest.approx(15 * 1.5 ** 0.5 / (15 * 1.5 ** 0.5 + 40 * 2 ** 0.5))
    assert autoscale.project({"a": 1.0, "b": 1.0}, {"a": 0.0, "b": 2.0}, 1, 2, 4) == {"a": 0.0, "b": 1.0}


def test_unit_weights_take_a_domains_units_in_order_and_cycle_past_the_last():
    domains = {"d": ["d-000", "d-001", "d-002"], "e": ["e"]}
    # d: 1.5 units -> d-000 whole, d-001 half; e: 3 units of one -> that unit three times
    w = autoscale.unit_weights({"d": 150.0, "e": 300.0}, domains, 100)
    assert w == pytest.approx({"d-000": 1 / 4.5, "d-001": 0.5 / 4.5, "e": 3 / 4.5})
    w = autoscale.unit_weights({"d": 600.0, "e": 100.0}, domains, 100)
    assert w == pytest.approx({"d-000": 2 / 7, "d-001": 2 / 7, "d-002": 2 / 7, "e": 1 / 7})
    budgets = autoscale.shard_budgets({"d": 600.0, "e": 100.0}, domains)
    assert budgets == {"d-000": 200, "d-001": 200, "d-002": 200, "e": 100}


def autoscale_config(data_dir):
    config = tiny_config(data_dir)
    budget = config["shard_training"]["tokens"]
    config["autoscale"] = {"domains": DOMAINS, "scales": [2 * budget, 4 * budget], "targets": ["extra_urllib"],
                           "predict": [16 * budget], "check": 8 * budget}
    return config


@pytest.fixture(scope="module")
def autoscaled(tmp_path_factory, pipeline, data_dir):
    """The finished tiny run with AutoScale added: (project, jobs the run ran)."""
    work = tmp_path_factory.mktemp("autoscale") / "project"
    shutil.copytree(pipeline, work, symlinks=True)
    write_config(work, autoscale_config(data_dir))
    return work, ran_jobs(snakemake(work))


def test_autoscale_added_to_a_finished_run(autoscaled):
    work, jobs = autoscaled
    k = len(DOMAINS)
    # real DDO trains 1 + 2K runs per small scale, the check one per weighting; the proxy nothing
    assert jobs.get("autoscale_train") == 2 * (1 + 2 * k)
    assert jobs.get("autoscale_check_train") == 4
    assert not {"train_shard", "train_seed", "train_full", "evaluate_batch"} & set(jobs)
    out = work / "results" / "autoscale"
    weights = pd.read_csv(out / "weights.csv")
    assert list(weights.columns) == ["method", "scale_tokens", "domain", "weight"]
    budget = 2048
    assert set(weights["scale_tokens"]) == {2 * budget, 4 * budget, 8 * budget, 16 * budget}
    assert set(weights["method"]) == {"real", "proxy"} and set(weights["domain"]) == set(DOMAINS)
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
    assert jobs.get("autoscale_train") == 2 * (1 + 2 * len(DOMAINS)) and jobs.get("autoscale_fit") == 1
    assert not {"train_shard", "train_seed", "split_source", "evaluate_batch"} & set(jobs)
    out = snakemake(copy, "-n", "--printshellcmds").stdout
    assert "results/study_http/models/4096/uniform" in out and "results/autoscale/models" not in out


def test_bad_autoscale_settings_are_named_by_key(data_dir):
    from shardmix.config import ConfigError, check

    for change, key in (({"scales": [8192, 4096]}, "autoscale.scales"),
                        ({"factors": [3.0, 1.0]}, "autoscale.factors"),
                        ({"check": 4096}, "autoscale.predict' / 'autoscale.check"),
                        ({"domains": ["json", "json"]}, "autoscale.domains[1]")):
        config = autoscale_config(data_dir)
        config["autoscale"].update(change)
        with pytest.raises(ConfigError, match=re.escape(key)):
            check(config)


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
