"""Unit tests of shardmix.overlap."""

from __future__ import annotations

import numpy as np
import pytest

from shardmix import tokens


def test_seed_spans_follow_the_manifest_and_overlap_is_measured(tmp_path):
    from shardmix import seed_data

    manifest = {"shards": {"b": {"seed_tokens": 3, "domain": "x"}, "a": {"seed_tokens": 2}, "c": {"seed_tokens": 4}}}
    # units in name order: a [0, 2), b [2, 5), c [5, 9)
    assert seed_data.spans(manifest, None) == [(0, 9)]
    assert seed_data.spans(manifest, ["a", "c"]) == [(0, 2), (5, 9)]
    assert seed_data.spans(manifest, ["x", "a"]) == [(0, 5)]  # a unit's recorded domain counts
    path = tmp_path / "seed.npy"
    tokens.save(path, np.arange(9, dtype=np.uint16), 100, seal=True)
    assert seed_data.read(path, manifest, ["c"]).tolist() == [5, 6, 7, 8]
    seen = np.array([5, 6, 7, 8, 50, 51, 52, 53])
    share = seed_data.seen_share({"half": seen, "none": np.arange(60, 70)},
                                 seed_data.blocks([(path, manifest, ["c"])]), n=3)
    assert share == {"half": pytest.approx(2 / 6), "none": 0.0}
