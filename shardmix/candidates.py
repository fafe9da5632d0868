"""Candidates for data selection: a pool's documents as pieces of equal length.

The pool is tokenized with the run's tokenizer as one stream (documents end with the
end-of-text token) and cut into units of `unit_tokens`: a long document becomes several
units, short ones share one, so every candidate is a comparable amount of text and a
selection of n units is exactly n * unit_tokens training tokens. Each unit remembers the
documents it came from (provenance of a selection).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from shardmix import tokenizer as tokenization
from shardmix import tokens as token_files
from shardmix.corpus import CorpusError, Document, read_documents

ENCODE_BATCH = 256


def read_pool(spec: dict, key: str = "selection.pool") -> Iterator[Document]:
    """The pool's documents, filtered to `field` in `values` when set."""
    field, values = spec.get("field"), spec.get("values")
    keep = None if values is None else {str(v) for v in values}
    for doc in read_documents(spec, key):
        if field is not None:
            if field not in doc.meta:
                raise CorpusError(f"{doc.where}: no field '{field}' ({key}.field)")
            if keep is not None and str(doc.meta[field]) not in keep:
                continue
        yield doc


def document_id(doc: Document) -> str:
    """How a selection names a document: its `id` or `title` field, else file and line."""
    for name in ("id", "title"):
        if name in doc.meta and isinstance(doc.meta[name], (str, int)):
            return str(doc.meta[name])
    return str(doc.where)


def build_units(docs, tok, unit_tokens: int) -> dict:
    """Token units [n, unit_tokens] and, per unit, the first and last document it holds."""
    dtype = token_files.dtype_for(len(tok))
    parts, ids, pending = [], [], []

    def flush():
        parts.extend(tokenization.encode_documents(tok, [d.text for d in pending], dtype))
        pending.clear()

    for doc in docs:
        if not doc.text.strip():
            continue
        pending.append(doc)
        ids.append(document_id(doc))
        if len(pending) >= ENCODE_BATCH:
            flush()
    flush()
    if not parts:
        raise CorpusError("selection.pool: the pool holds no text (after its field filter)")
    starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
    stream = np.concatenate(parts)
    n = len(stream) // unit_tokens
    if n == 0:
        raise CorpusError(f"selection.pool: the pool holds {len(stream)} tokens, less than one unit "
                          f"(selection.unit_tokens = {unit_tokens})")
    first = np.searchsorted(starts, np.arange(n) * unit_tokens, side="right") - 1
    last = np.searchsorted(starts, (np.arange(n) + 1) * unit_tokens - 1, side="right") - 1
    return {"units": stream[:n * unit_tokens].reshape(n, unit_tokens), "first_doc": first, "last_doc": last,
            "doc_ids": ids, "pool_tokens": int(len(stream))}


def pieces(ids: np.ndarray, unit_tokens: int) -> np.ndarray:
    """A token array (a target) as units of the same length as the candidates."""
    n = len(ids) // unit_tokens
    if n == 0:
        raise CorpusError(f"{len(ids)} tokens make no unit of {unit_tokens}")
    return np.asarray(ids[:n * unit_tokens]).reshape(n, unit_tokens)
