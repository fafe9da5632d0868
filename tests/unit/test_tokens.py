"""Unit tests of shardmix.tokens."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ROOT, TESTS, whole_documents

from shardmix import tokens


def test_a_full_disk_while_writing_tokens_is_named(tmp_path):
    target = tmp_path / "x.train.npy"
    target.symlink_to("/dev/full")  # every write fails with ENOSPC
    with pytest.raises(tokens.TokenFileError, match=rf"{target}: could not write token file: no space left on "
                                                    r"the device \(\d+ MiB free, 0.0 MiB needed\)"):
        tokens.save(target, np.arange(5000), 512)


DOCS = whole_documents()


def test_a_huge_document_is_tokenized_in_bounded_memory(tmp_path):
    import os
    import subprocess
    import sys

    script = """
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from helpers import tiny_tokenizer
from shardmix import tokenizer
tok = tiny_tokenizer()
text = open(sys.argv[2]).read()
tokenizer.encode_documents(tok, [text[:2_000_000]])  # the per-call peak: bounded whatever the text
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ids = tokenizer.encode_documents(tok, [text], dtype="uint16")[0]
print(len(text), len(ids), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""
    docs = " ".join(d["text"] for d in DOCS)
    big = tmp_path / "big.txt"
    big.write_text(docs * (4_000_000 // len(docs)))
    out = subprocess.run([sys.executable, "-c", script, str(TESTS), str(big)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": f"{TESTS}:{ROOT}"}).stdout.split()
    chars, n_ids, grown = map(int, out)
    assert n_ids > chars / 8
    print(f"\n{chars / 1e6:.0f}M characters: peak memory grew by {grown / chars:.1f} bytes per character")
    assert grown < 8 * chars  # one tokenizer call on the whole text: about 240 bytes per character
