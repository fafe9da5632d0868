"""Read documents from the corpus formats users bring.

Every record is yielded as a `Document` that remembers where it came from, so an
error further down (a missing metadata field, say) can name the file and line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


class CorpusError(ValueError):
    """Input data that cannot be read as configured."""


@dataclass
class Document:
    text: str
    meta: dict = field(default_factory=dict)
    where: str = ""


def detect_format(path: Path) -> str:
    name = path.name.lower()
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() \
                or (path / "state.json").exists():
            return "hf_disk"
        return "text_dir"
    if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".txt"):
        return "text_file"
    raise CorpusError(f"{path}: cannot tell the format from the name; set 'format' to one of "
                      "jsonl, parquet, text_dir, hf_disk")


def read_documents(spec: dict, origin: str = "corpus") -> Iterator[Document]:
    """Yield documents of a corpus spec ({path, format, text_field, split})."""
    path = Path(spec["path"])
    if not path.exists():
        raise CorpusError(f"{origin}.path: {path} does not exist")
    fmt = spec.get("format", "auto")
    if fmt == "auto":
        fmt = detect_format(path)
    field_name = spec.get("text_field", "text")
    readers = {"jsonl": _read_jsonl, "parquet": _read_parquet, "text_dir": _read_text_dir,
               "hf_disk": _read_hf_disk, "text_file": _read_text_file}
    if fmt == "text_dir" and not path.is_dir():
        raise CorpusError(f"{origin}.path: {path} is not a folder (format text_dir)")
    yield from readers[fmt](path, field_name, spec)


def _text_of(record, field_name: str, where: str) -> str:
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if field_name not in record:
        keys = ", ".join(sorted(record)) or "none"
        raise CorpusError(f"{where}: no text field '{field_name}' (keys: {keys})")
    text = record[field_name]
    if not isinstance(text, str):
        raise CorpusError(f"{where}: field '{field_name}' is {type(text).__name__}, not text")
    return text


def _decode(data: bytes, encoding: str, path: Path, first_line: int = 1) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = first_line + data.count(b"\n", 0, e.start)
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise CorpusError(f"{path}:{line}: not valid {encoding} text (byte 0x{data[e.start]:02x} at column "
                          f"{column}); set the source's `encoding` (e.g. latin-1) if the file uses another "
                          "one") from None
    except LookupError:
        raise CorpusError(f"{path}: unknown text encoding {encoding!r} (key `encoding`)") from None


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of a JSONL file, gzip-compressed or not; a damaged archive is named
    with the line where it breaks."""
    compressed = path.name.endswith(".gz")
    lineno = 0
    try:
        with (gzip.open if compressed else open)(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                yield lineno, raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        what = "ends before its end (truncated?)" if isinstance(e, EOFError) else f"is not valid gzip ({e})"
        raise CorpusError(f"{path}:{lineno + 1}: the compressed file {what}; replace it with a complete copy, "
                          "or name it without .gz if it is plain text") from None


def _read_jsonl(path: Path, field_name: str, spec: dict) -> Iterator[Document]:
    encoding = spec.get("encoding", "utf-8")
    for lineno, raw in _lines(path):
        line = _decode(raw, encoding, path, lineno)
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        text = _text_of(record, field_name, where)
        meta = {k: v for k, v in record.items() if k != field_name}
        yield Document(text, meta, where)


def _read_parquet(path: Path, field_name: str, spec: dict) -> Iterator[Document]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    if field_name not in pf.schema_arrow.names:
        raise CorpusError(f"{path}: no text column '{field_name}' (columns: {', '.join(pf.schema_arrow.names)})")
    row = 0
    for batch in pf.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            row += 1
            yield Document(_text_of(record, field_name, f"{path}: row {row}"),
                           {k: v for k, v in record.items() if k != field_name}, f"{path}: row {row}")


def _read_text_file(path: Path, field_name: str, spec: dict) -> Iterator[Document]:
    yield Document(_decode(path.read_bytes(), spec.get("encoding", "utf-8"), path), {"file": path.name}, str(path))


def _read_text_dir(path: Path, field_name: str, spec: dict) -> Iterator[Document]:
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise CorpusError(f"{path}: folder holds no .txt files")
    for p in files:
        rel = p.relative_to(path)
        # `dir` (first sub-folder) lets a folder-per-domain layout shard by field 'dir'
        meta = {"dir": rel.parts[0] if len(rel.parts) > 1 else "", "file": str(rel)}
        yield Document(_decode(p.read_bytes(), spec.get("encoding", "utf-8"), p), meta, str(p))


def _read_hf_disk(path: Path, field_name: str, spec: dict) -> Iterator[Document]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises several types for a folder it does not recognise
        raise CorpusError(f"{path}: not a dataset saved with save_to_disk ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        split = spec.get("split", "train")
        if split not in ds:
            raise CorpusError(f"{path}: no split '{split}' (splits: {', '.join(ds)})")
        ds = ds[split]
    if field_name not in ds.column_names:
        raise CorpusError(f"{path}: no text column '{field_name}' (columns: {', '.join(ds.column_names)})")
    for i, record in enumerate(ds):
        yield Document(_text_of(record, field_name, f"{path}: row {i + 1}"),
                       {k: v for k, v in record.items() if k != field_name}, f"{path}: row {i + 1}")


def source_files(path: str | Path) -> list[Path]:
    """The files that make up a source: the file itself, or every file under its folder."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def fingerprint(path: str | Path) -> list:
    """Cheap identity of a source (names, sizes, modification times): when it still matches the
    recorded one, the content is taken as unchanged without reading it."""
    root = Path(path)
    return [[str(p.relative_to(root)) if root.is_dir() else p.name, p.stat().st_size, p.stat().st_mtime_ns]
            for p in source_files(root)]


def checksum(path: str | Path) -> str:
    """SHA-256 over the names and bytes of a source's files."""
    root = Path(path)
    digest = hashlib.sha256()
    for p in source_files(root):
        digest.update((str(p.relative_to(root)) if root.is_dir() else "").encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
