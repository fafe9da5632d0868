"""Unit tests of shardmix.tokenizer."""

from __future__ import annotations

from helpers import write_jsonl

from shardmix.sampling import Sample


def test_the_tokenizer_sample_reads_windows_spread_over_a_big_file(tmp_path):
    records = [{"text": f"document {i} " + "word " * 40, "domain": "a"} for i in range(40_000)]
    path = write_jsonl(tmp_path / "big.jsonl", records)
    size = path.stat().st_size
    limit = size // 20
    sample = Sample([{"path": str(path)}], limit)
    texts = list(sample.texts())
    numbers = [int(t.split()[1]) for t in texts]
    assert 0.8 * limit <= sample.kept_bytes <= limit  # text, without the JSON around it
    assert sample.read_bytes <= 1.1 * limit  # only its windows
    assert min(numbers) < 4_000 and max(numbers) > 36_000  # spread over the whole file
    assert list(Sample([{"path": str(path)}], limit).texts()) == texts  # seeded
    small = Sample([{"path": str(path)}], 10 * size)
    assert sum(1 for _ in small.texts()) == len(records)  # a corpus within the budget: every document


def test_huge_documents_train_the_tokenizer_in_pieces_and_others_whole():
    from shardmix import tokenizer

    small = "x = 1\n" * 1000
    assert tokenizer.training_pieces(small) == [small]
    huge = "def f():\n    return 1\n" * (3 * tokenizer.TRAIN_PIECE_CHARS // 22)
    pieces = tokenizer.training_pieces(huge)
    assert "".join(pieces) == huge and len(pieces) >= 3
    assert all(len(p) <= tokenizer.TRAIN_PIECE_CHARS and p.endswith("\n") for p in pieces[:-1])
