"""Unit tests of shardmix.autoscale."""

from __future__ import annotations

import numpy as np
import pytest

from shardmix import autoscale

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
