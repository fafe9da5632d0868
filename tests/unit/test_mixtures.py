"""Unit tests of shardmix.mixtures."""

from __future__ import annotations

import pytest

from shardmix import mixtures, naming


def test_adding_a_shard_leaves_existing_batches_untouched():
    spec = {"max_size": 3, "random": {"fraction": 0.5, "sizes": [4], "seed": 1}, "explicit": [], "batch_size": 4}
    old = ["a", "b", "c", "d", "e"]
    before = mixtures.batches(old, mixtures.candidate_mixtures(old, spec), 4)
    after = mixtures.batches(old + ["f"], mixtures.candidate_mixtures(old + ["f"], spec), 4)
    for batch, members in before.items():
        assert after[batch] == members
    new = set(after) - set(before)
    assert new and all(b.startswith("f.") for b in new)
    assert all("f" in m for b in new for m in after[b])


def test_mixture_selection():
    shards = ["a", "b", "c", "d"]
    allpairs = mixtures.candidate_mixtures(shards, {"max_size": 2, "explicit": [["d", "c", "a"]]})
    assert len(allpairs) == 6 + 1 and "a+c+d" in allpairs
    sampled = mixtures.candidate_mixtures(shards, {"max_size": 1, "random": {"fraction": 0.5, "sizes": [2, 3], "seed": 3}})
    assert 0 < len(sampled) < 10 and all(len(naming.members(m)) in (2, 3) for m in sampled)
    with pytest.raises(mixtures.MixtureError, match=r"mixtures.explicit\[0\] names shard 'z'"):
        mixtures.candidate_mixtures(shards, {"max_size": 2, "explicit": [["a", "z"]]})


def test_weighted_candidates_grid_and_dirichlet():
    shards = ["a", "b", "c", "d"]
    grid = mixtures.simplex_grid(["a", "b", "c"], 0.25)
    # 15 points of the 0.25 grid over 3 shards, less the 3 single shards
    assert len(grid) == 12 and "a@0.5+b@0.25+c@0.25" in grid and "a+b" in grid
    with pytest.raises(mixtures.MixtureError, match="does not divide 1"):
        mixtures.simplex_grid(["a", "b"], 0.3)
    draws = mixtures.dirichlet_sample(shards, 5, 1.0, 0)
    assert draws == mixtures.dirichlet_sample(list(reversed(shards)), 5, 1.0, 0)  # keyed by the set, not its order
    assert all(naming.members(m) == shards and abs(sum(naming.weights(m).values()) - 1) < 1e-9 for m in draws)
    assert mixtures.dirichlet_sample(shards, 5, 1.0, 1) != draws
    spec = {"max_size": 2, "grid": [{"step": 0.25, "shards": ["a", "b", "c"]}],
            "dirichlet": [{"count": 3, "alpha": 1.0, "seed": 0, "shards": None}],
            "weighted": [{"a": 0.9, "d": 0.1}]}
    found = mixtures.candidate_mixtures(shards, spec)
    assert found["a+b"] == "subset" and found["a@0.5+b@0.25+c@0.25"] == "weighted"
    assert found["a@0.9+d@0.1"] == "weighted" and sum(f == "pool" for f in found.values()) == 3
    with pytest.raises(mixtures.MixtureError, match=r"mixtures.weighted\[0\] names shard 'z'"):
        mixtures.candidate_mixtures(shards, {"max_size": 2, "weighted": [{"a": 1, "z": 1}]})


def test_adding_a_shard_leaves_weighted_batches_untouched():
    spec = {"max_size": 2, "grid": [{"step": 0.5, "shards": ["a", "c"]}, {"step": 0.25, "shards": ["b", "c", "d"]}],
            "dirichlet": [{"count": 4, "alpha": 1.0, "seed": 0, "shards": None},
                          {"count": 3, "alpha": 0.5, "seed": 0, "shards": ["a", "b"]}],
            "weighted": [{"a": 0.9, "b": 0.1}]}
    old = ["a", "b", "c", "d"]
    before = mixtures.batches(old, mixtures.candidate_mixtures(old, spec), 5)
    after = mixtures.batches(old + ["e"], mixtures.candidate_mixtures(old + ["e"], spec), 5)
    # the pool-wide sample is redrawn over the grown pool: its old batch leaves the plan
    assert [b for b in before if b not in after] == ["d.r000"]
    for batch, names in before.items():
        assert batch == "d.r000" or after[batch] == names
    new = set(after) - set(before)
    assert new == {"e.000", "e.r000"} and all("e" in naming.members(m) for b in new for m in after[b])


def test_validation_sample_draws_weighted_picks_and_keeps_them():
    shards = ["a", "b", "c", "d"]
    spec = {"max_size": 3, "grid": [{"step": 0.25, "shards": ["a", "b", "c"]}]}
    scored = mixtures.candidate_mixtures(shards, spec)
    sample = {"count": 5, "sizes": [2, 3], "seed": 0, "weighted": 2}
    picks = mixtures.validation_sample(scored, sample, shards)
    assert len(picks) == 5 and sum(map(naming.is_weighted, picks)) == 2
    grown = mixtures.candidate_mixtures(shards + ["e"], spec)
    assert mixtures.validation_sample(grown, sample, shards + ["e"], {"random": sample, "picks": picks}) == picks


def test_validation_sample_keeps_its_picks_when_shards_are_added():
    spec = {"count": 4, "sizes": [2, 3], "seed": 0}
    six = [f"s{i}" for i in range(6)]
    before = mixtures.validation_sample(mixtures.candidate_mixtures(six[:4], {"max_size": 3}), spec, six[:4])
    record = {"random": spec, "picks": [naming.members(m) for m in before]}  # older records list members
    grown = mixtures.candidate_mixtures(six, {"max_size": 3})
    assert mixtures.validation_sample(grown, spec, six, record) == before
    assert mixtures.validation_sample(grown, spec, six) != before
    assert len(mixtures.validation_sample(grown, {**spec, "count": 6}, six, record)) == 6
    assert set(before) < set(mixtures.validation_sample(grown, {**spec, "count": 6}, six, record))
    assert mixtures.validation_sample(grown, {**spec, "seed": 1}, six, record) == \
        mixtures.validation_sample(grown, {**spec, "seed": 1}, six)


def test_a_weighted_validation_sample_that_cannot_be_drawn_says_why():
    from shardmix import mixtures

    scored = {"a+b": "subset", "a+c": "subset", "a@0.25+b@0.25+c@0.5": "weighted"}
    sample = {"count": 3, "sizes": [2], "seed": 0, "weighted": 2}
    with pytest.raises(mixtures.MixtureError, match=r"validation.random.weighted asks for 2 weighted mixtures of 2 "
                                                     r"members .* scores only 0 such \(its weighted mixtures have 3 "
                                                     "members\\)"):
        mixtures.validation_sample(scored, sample, ["a", "b", "c"])
    sample["sizes"] = [2, 3]
    sample["weighted"] = 1
    assert "a@0.25+b@0.25+c@0.5" in mixtures.validation_sample(scored, sample, ["a", "b", "c"])
