"""Unit tests of shardmix.selection."""

from __future__ import annotations

import numpy as np
import torch

from shardmix import candidates, overlap, selection
from shardmix.corpus import Document

OT = {"reg": 0.05, "chunk": 400, "max_target": 2000, "max_iter": 2000}


CPU = torch.device("cpu")


def _clusters(spec, rng, d=32, noise=0.1):
    centres = {k: v / np.linalg.norm(v) for k, v in zip("ABC", rng.normal(size=(3, d)))}
    points, labels = [], []
    for name, n in spec:
        x = centres[name] + noise * rng.normal(size=(n, d))
        points.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        labels += [name] * n
    return np.vstack(points), np.array(labels)


def test_gotd_fills_what_the_pool_lacks_where_nearest_follows_the_majority():
    """Target: half A, half B. Pool: mostly A, a little B, some C. Moving the pool toward the
    target needs B, which GOT-D's calibrated gradient ranks first; the nearest-to-the-mean
    baseline takes the abundant A. Added to the pool, GOT-D's choice brings it closest to the
    target (what GOT-D optimises: the data a model has seen, plus the new data)."""
    rng = np.random.default_rng(0)
    pool, labels = _clusters([("A", 800), ("B", 100), ("C", 100)], rng)
    target, _ = _clusters([("A", 100), ("B", 100)], np.random.default_rng(0))
    eligible = np.ones(len(pool), dtype=bool)
    picked, distance = {}, {}
    for method in selection.METHODS:
        chosen, info = selection.select(method, pool, target, eligible, 100, OT, 0, "t", CPU)
        assert len(set(chosen)) == 100
        picked[method] = labels[chosen]
        distance[method] = selection.ot_distance(np.vstack([pool, pool[chosen]]), target, OT, 0,
                                                 info["cost_scale"], CPU)
    assert (picked["gotd"] == "B").sum() >= 90
    assert (picked["nearest"] == "B").sum() < 60
    assert distance["gotd"] < distance["nearest"] and distance["gotd"] < distance["random"]


def test_gotd_scores_do_not_depend_on_how_the_pool_is_chunked():
    rng = np.random.default_rng(1)
    pool, _ = _clusters([("A", 300), ("B", 150), ("C", 150)], rng)
    target, _ = _clusters([("B", 80)], np.random.default_rng(1))
    scale = selection.cost_scale(pool, target, 0)
    whole, _ = selection.gotd_scores(pool, target, {**OT, "chunk": 10_000}, 0, scale, CPU)
    chunked, info = selection.gotd_scores(pool, target, {**OT, "chunk": 200}, 0, scale, CPU)
    assert info["chunks"] == 3
    assert np.corrcoef(whole, chunked)[0, 1] > 0.95


def test_excluded_candidates_are_never_picked():
    rng = np.random.default_rng(2)
    pool, labels = _clusters([("A", 50), ("B", 50)], rng)
    target, _ = _clusters([("B", 40)], np.random.default_rng(2))
    eligible = labels == "A"
    for method in selection.METHODS:
        chosen, _ = selection.select(method, pool, target, eligible, 20, OT, 0, "t", CPU)
        assert set(labels[chosen]) == {"A"}


class _Tok:
    """Whitespace tokenizer with the interface encode_documents uses."""
    eos_token_id = 0

    def __len__(self):
        return 100

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[int(w) for w in t.split()] for t in texts]}


def test_units_cut_long_documents_and_group_short_ones():
    docs = [Document(" ".join(["5"] * 9), {"id": "long"}), Document("6 6", {"title": "short"}),
            Document("7 7 7", {}, "pool.jsonl:3"), Document("", {"id": "empty"})]
    built = candidates.build_units(docs, _Tok(), 4)
    # stream: 5 x9, eos, 6 6, eos, 7 7 7, eos = 17 tokens -> 4 units, the tail of 1 dropped
    assert built["units"].shape == (4, 4)
    assert built["units"][2].tolist() == [5, 0, 6, 6]
    assert built["doc_ids"] == ["long", "short", "pool.jsonl:3"]
    assert list(built["first_doc"]) == [0, 0, 0, 1] and list(built["last_doc"]) == [0, 0, 1, 2]


def test_a_unit_repeating_a_protected_span_is_excluded():
    rng = np.random.default_rng(3)
    heldout = rng.integers(1, 5000, size=400)
    units = rng.integers(1, 5000, size=(6, 64))
    units[1, 10:42] = heldout[100:132]   # a 32-token span of the held-out text
    units[4, 30:60] = heldout[200:230]   # only 30 tokens: not a repeat at n = 32
    protected = overlap.protected_hashes([heldout, rng.integers(1, 5000, size=10)], 32)
    assert overlap.overlapping(units, protected, 32).tolist() == [False, True, False, False, False, False]
