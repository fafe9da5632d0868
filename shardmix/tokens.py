"""Flat token files: one .npy array of ids per shard split (memory-mapped when read), written
as a stream, and beside each an index of where its documents end (`<name>.docs.npy`).

A token file's documents are the runs between consecutive ends of its index. A document the
held-out / seed draw cut in two (a chunk boundary inside it) is two pieces, one in each file it
went to, so every run of the index is a contiguous run of one source document.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path

import numpy as np

from shardmix import atomic, checksums

INDEX = ".docs.npy"


class TokenFileError(OSError):
    """A token file that could not be written, named with the reason."""


def dtype_for(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32


def _write_error(e: OSError, path: str | Path, nbytes: int) -> TokenFileError:
    full = e.errno == errno.ENOSPC or "requested and" in str(e)  # numpy's short write on a full disk
    folder = Path(path).parent
    free = shutil.disk_usage(folder).free if folder.exists() else 0
    why = (f"no space left on the device ({free / 2**20:.0f} MiB free, {nbytes / 2**20:.1f} MiB needed)"
           if full else (e.strerror or str(e)))
    return TokenFileError(e.errno or errno.EIO, f"{path}: could not write token file: {why}")


def save(path: str | Path, ids: np.ndarray, vocab_size: int, seal: bool = False) -> None:
    """Write `ids` at `path` (inside a folder that atomic.directory seals, or, with `seal`, whole
    and sealed on its own)."""
    ids = np.asarray(ids).astype(dtype_for(vocab_size), copy=False)
    try:
        if seal:
            with atomic.file(path) as tmp, open(tmp, "wb") as f:
                np.save(f, ids)
        else:
            np.save(path, ids)
    except OSError as e:
        raise _write_error(e, path, ids.nbytes) from None


def _npy_header(dtype, length: int) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                               "fortran_order": False, "shape": (length,)})
    return out.getvalue()


def header_size(dtype) -> int:
    """Bytes before the ids of a 1-D .npy file of `dtype` (128 up to 10^18 ids)."""
    return len(_npy_header(dtype, 0))


class Writer:
    """A 1-D .npy file written in appends, byte for byte what np.save writes for the whole
    array: the header's length does not depend on the array's (128 bytes up to 10^18 ids), so
    it is reserved first and filled in on `close`."""

    def __init__(self, path: str | Path, dtype):
        self.path, self.dtype, self.length = Path(path), np.dtype(dtype), 0
        self.reserved = header_size(self.dtype)
        self.file = open(self.path, "wb")
        self.file.write(b"\0" * self.reserved)

    def append(self, ids: np.ndarray) -> None:
        data = np.ascontiguousarray(ids, dtype=self.dtype)
        try:
            self.file.write(data.tobytes())
        except OSError as e:
            raise _write_error(e, self.path, data.nbytes) from None
        self.length += len(data)

    def close(self) -> None:
        header = _npy_header(self.dtype, self.length)
        assert len(header) == self.reserved, "a header np.save would write longer"
        self.file.seek(0)
        self.file.write(header)
        self.file.close()


class IndexWriter:
    """Document ends of one token file, appended in increasing order; a repeated end is dropped."""

    def __init__(self, path: str | Path):
        self.writer, self.last = Writer(path, np.uint64), 0

    def append(self, ends: np.ndarray) -> None:
        ends = np.unique(ends)
        ends = ends[ends > self.last]
        if len(ends):
            self.writer.append(ends)
            self.last = int(ends[-1])

    def close(self, length: int) -> None:
        self.append(np.asarray([length]))
        self.writer.close()


class Raw:
    """Headerless ids (and int64 document lengths) appended to `<stem>.ids` / `<stem>.lengths`:
    the scratch format of a source's streams before they are split."""

    def __init__(self, stem: str | Path, dtype):
        self.ids, self.lengths, self.dtype = Path(f"{stem}.ids"), Path(f"{stem}.lengths"), np.dtype(dtype)

    def append(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        for path, data in ((self.ids, np.ascontiguousarray(ids, self.dtype)),
                           (self.lengths, np.ascontiguousarray(lengths, np.int64))):
            try:
                with open(path, "ab") as f:
                    f.write(data.tobytes())
            except OSError as e:
                raise _write_error(e, path, data.nbytes) from None

    def count(self) -> int:
        return self.ids.stat().st_size // self.dtype.itemsize if self.ids.exists() else 0


def read_span(path: str | Path, dtype, start: int, count: int, header: int = 0) -> np.ndarray:
    """`count` items from item `start` of a flat file (after `header` bytes), read, not mapped:
    a sequential pass over a big file then holds one block in memory, not every page it touched."""
    dtype = np.dtype(dtype)
    with open(path, "rb") as f:
        f.seek(header + start * dtype.itemsize)
        data = np.fromfile(f, dtype=dtype, count=count)
    if len(data) != count:
        raise checksums.DamagedArtifact(f"{path}: shorter than expected ({len(data)} of {count} items from {start})")
    return data


def load(path: str | Path) -> np.ndarray:
    """The token ids at `path`, memory-mapped, after checking them against their seal."""
    checksums.check_file(path)
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:  # a truncated file in an unsealed (older) folder
        raise checksums.DamagedArtifact(f"{path}: damaged token file ({e}); delete "
                                        f"{os.path.dirname(path)} and rerun snakemake, which rebuilds it") from None


def index_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name[:-len(".npy")] + INDEX)


def document_ends(path: str | Path) -> np.ndarray:
    """The end (exclusive) of every document of the token file at `path`, from its index."""
    index = index_path(path)
    if not index.exists():
        raise FileNotFoundError(f"{index}: no document index beside {path} (folders split before 2026-11-30 "
                                "have none; `python -m shardmix.export --eos-id ID` ends documents at the "
                                "tokenizer's end-of-text id instead)")
    checksums.check_file(index)
    return np.load(index, mmap_mode="r")
