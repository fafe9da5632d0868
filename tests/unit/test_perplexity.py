"""Unit tests of shardmix.perplexity."""

from __future__ import annotations

from shardmix import perplexity


def test_evaluation_windows_never_cross_a_chunk_join():
    # two segments of 10 tokens, context 4: each segment predicts its last 9 tokens once
    spans = perplexity.windows(20, 4, segment=10)
    assert spans == [(0, 4), (4, 4), (8, 1), (10, 4), (14, 4), (18, 1)]
    predicted = [t for s, n in spans for t in range(s + 1, s + n + 1)]
    assert sorted(predicted) == [t for t in range(20) if t % 10 != 0]
    assert perplexity.windows(9, 4) == [(0, 4), (4, 4)]  # one stream: every token after the first
    # a segment shorter than the context, and a short last segment
    assert perplexity.windows(7, 8, segment=3) == [(0, 2), (3, 2)]
    assert perplexity.full_length(8, 3) == 2 and perplexity.full_length(8, None) == 8
