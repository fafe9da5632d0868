"""Read documents from the corpus formats users bring.

Every record is yielded as a `Document` that remembers where it came from, so an
error further down (a missing metadata field, say) can name the file and line.
"""

from __future__ import annotations

import gzip
import json
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


def _read_jsonl(path: Path, field_name: str, spec: dict) -> Iterator[Document]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
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
    yield Document(path.read_text(encoding="utf-8", errors="replace"), {"file": path.name}, str(path))


def _read_text_dir(path: Path, field_name: str, spec: dict) -> Iterator[Document]:
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise CorpusError(f"{path}: folder holds no .txt files")
    for p in files:
        rel = p.relative_to(path)
        # `dir` (first sub-folder) lets a folder-per-domain layout shard by field 'dir'
        meta = {"dir": rel.parts[0] if len(rel.parts) > 1 else "", "file": str(rel)}
        yield Document(p.read_text(encoding="utf-8", errors="replace"), meta, str(p))


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
