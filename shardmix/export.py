"""Token files as Megatron-LM's indexed dataset: `<prefix>.bin` (the ids, headerless) and
`<prefix>.idx` (one sequence per document, with its length and byte offset), the format
Megatron-LM, Megatron-DeepSpeed, GPT-NeoX and NeMo train from (`--data-path <prefix>`).

    python -m shardmix.export results/corpus/corpus/tokens/json.train.npy --out export/json_train

Several token files are written as one dataset, in the order given (a mixture's training data).
Documents come from each file's index (`<name>.docs.npy`); a folder split by a version of
shardmix that kept no index can give `--eos-id`, the end-of-text id after which documents end.
Ids are copied a block at a time; the index is built in memory (20 bytes per document).
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np

from shardmix import atomic, checksums
from shardmix import tokens as token_files

HEADER = b"MMIDIDX\x00\x00"
VERSION = 1
# Megatron's dtype codes; it has no uint32, so ids of a larger vocabulary are written as int32
CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}
BLOCK = 1 << 22


def _ends(path: Path, length: int, eos_id: int | None) -> np.ndarray:
    if token_files.index_path(path).exists() or eos_id is None:
        return np.asarray(token_files.document_ends(path), dtype=np.int64)
    ids = np.load(path, mmap_mode="r")
    found = [np.flatnonzero(ids[i:i + BLOCK] == eos_id) + i + 1 for i in range(0, length, BLOCK)]
    ends = np.concatenate(found + [np.asarray([length])]) if length else np.zeros(0, np.int64)
    return np.unique(ends)


def megatron(token_paths: list[str | Path], prefix: str | Path, eos_id: int | None = None) -> dict:
    """Write `<prefix>.bin` and `<prefix>.idx` (each whole, with a .sha256 seal) from token files."""
    arrays = []
    for p in map(Path, token_paths):
        checksums.check_file(p)
        arrays.append(np.load(p, mmap_mode="r"))
    dtype = np.dtype(np.uint16) if all(a.dtype == np.uint16 for a in arrays) else np.dtype(np.int32)
    lengths = []
    with atomic.file(f"{prefix}.bin") as tmp, open(tmp, "wb") as out:
        for path, ids in zip(map(Path, token_paths), arrays):
            for start in range(0, len(ids), BLOCK):
                out.write(np.ascontiguousarray(ids[start:start + BLOCK], dtype=dtype).tobytes())
            ends = _ends(path, len(ids), eos_id)
            lengths.append(np.diff(ends, prepend=0))
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    if len(lengths) and lengths.max() >= 2**31:
        raise ValueError(f"a document of {lengths.max()} ids: Megatron's index holds lengths below 2^31")
    pointers = np.concatenate([[0], np.cumsum(lengths[:-1] * dtype.itemsize)]) if len(lengths) else lengths
    documents = np.arange(len(lengths) + 1, dtype=np.int64)  # each document one sequence
    with atomic.file(f"{prefix}.idx") as tmp, open(tmp, "wb") as out:
        out.write(HEADER + struct.pack("<Q", VERSION) + struct.pack("<B", CODES[dtype]))
        out.write(struct.pack("<Q", len(lengths)) + struct.pack("<Q", len(documents)))
        out.write(lengths.astype(np.int32).tobytes())
        out.write(np.asarray(pointers, np.int64).tobytes())
        out.write(documents.tobytes())
    return {"documents": len(lengths), "tokens": int(lengths.sum()), "dtype": dtype.name}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shardmix.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("token_files", nargs="+", help="token files (.npy) of a results folder, in order")
    parser.add_argument("--out", required=True, help="prefix of the .bin and .idx files to write")
    parser.add_argument("--eos-id", type=int, default=None,
                        help="end-of-text id, to find documents in token files without an index")
    args = parser.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    try:
        info = megatron(args.token_files, args.out, args.eos_id)
    except (FileNotFoundError, ValueError, checksums.DamagedArtifact) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}.bin, {args.out}.idx: {info['documents']} documents, {info['tokens']} ids ({info['dtype']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
