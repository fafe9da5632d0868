"""Read documents from the corpus formats users bring.

Every record is yielded as a `Document` that remembers where it came from, so an
error further down (a missing metadata field, say) can name the file and line.

A source is a file, a folder, or a glob of files. Its documents can be read in `Piece`s (a
whole file, or one of `count` equal slices of a big one: byte ranges of a JSONL file, row
groups of a Parquet file, rows of a saved dataset), so parts of one source can be read by
separate jobs; reading every piece in order gives the documents of the whole source in order.
"""

from __future__ import annotations

import functools
import glob
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple


class CorpusError(ValueError):
    """Input data that cannot be read as configured."""


@dataclass
class Document:
    text: str
    meta: dict = field(default_factory=dict)
    where: object = ""  # a str, or a `LineOf` whose line number is counted only when it is shown


JSONL_NAMES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")
GLOB_CHARS = "*?["


def is_glob(path: str | Path) -> bool:
    return any(c in str(path) for c in GLOB_CHARS)


def exists(path: str | Path) -> bool:
    """The path exists, or the glob matches at least one file."""
    return bool(source_files(path)) if is_glob(path) else Path(path).exists()


def _glob_root(pattern: str) -> Path:
    """The folder a glob's matches are named relative to: its longest leading part without wildcards."""
    parts = Path(pattern).parts
    fixed = [p for p in parts[:next(i for i, p in enumerate(parts) if is_glob(p))]]
    return Path(*fixed) if fixed else Path(".")


def _file_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_NAMES):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".txt"):
        return "text_file"
    return None


def detect_format(path: Path) -> str:
    if is_glob(path):
        kinds = {_file_format(p) for p in source_files(path)}
        if len(kinds) == 1 and None not in kinds:
            return "text_dir" if kinds == {"text_file"} else kinds.pop()
        raise CorpusError(f"{path}: the files it matches are not all JSONL, all Parquet or all .txt; set "
                          "'format' to one of jsonl, parquet, text_dir")
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() \
                or (path / "state.json").exists():
            return "hf_disk"
        kinds = {_file_format(p) for p in source_files(path)} - {None}
        if "text_file" in kinds or not kinds:
            return "text_dir"  # a folder of .txt files, each a document
        if len(kinds) == 1:
            return kinds.pop()  # a folder of JSONL (or Parquet) files, read in name order
        raise CorpusError(f"{path}: the folder holds both JSONL and Parquet files; set 'format' to the one to read")
    fmt = _file_format(path)
    if fmt is None:
        raise CorpusError(f"{path}: cannot tell the format from the name; set 'format' to one of "
                          "jsonl, parquet, text_dir, hf_disk")
    return fmt


def source_format(spec: dict) -> str:
    fmt = spec.get("format", "auto")
    return detect_format(Path(spec["path"])) if fmt == "auto" else fmt


@dataclass(frozen=True)
class Piece:
    """`file`, or slice `index` of `count` equal slices of it."""
    file: str
    index: int = 0
    count: int = 1

    def as_list(self) -> list:
        return [self.file, self.index, self.count]


def pieces_of(spec: dict, origin: str = "corpus") -> list[Piece]:
    """Every file of a source, whole, in reading order."""
    path = Path(spec["path"])
    if not exists(path):
        raise CorpusError(f"{origin}.path: {path} does not exist" + (" (the glob matches no file)"
                                                                        if is_glob(path) else ""))
    fmt = source_format(spec)
    if fmt == "text_dir" and not path.is_dir() and not is_glob(path):
        raise CorpusError(f"{origin}.path: {path} is not a folder (format text_dir)")
    if fmt == "hf_disk" or not (path.is_dir() or is_glob(path)):
        return [Piece(str(path))]
    wanted = "text_file" if fmt == "text_dir" else fmt
    files = [p for p in source_files(path) if _file_format(p) == wanted]
    if not files:
        kind = {"text_file": ".txt", "jsonl": "JSONL", "parquet": "Parquet"}[wanted]
        raise CorpusError(f"{path}: {'folder' if path.is_dir() else 'glob'} holds no {kind} files")
    return [Piece(str(p)) for p in files]


def read_documents(spec: dict, origin: str = "corpus") -> Iterator[Document]:
    """Yield documents of a corpus spec ({path, format, text_field, split, encoding})."""
    yield from read_pieces(spec, pieces_of(spec, origin))


def read_pieces(spec: dict, pieces: list[Piece], fmt: str | None = None) -> Iterator[Document]:
    """Documents of `pieces` of a source, in order (`fmt`: its format, where the caller knows it)."""
    fmt = fmt or source_format(spec)
    field_name = spec.get("text_field", "text")
    root = Path(spec["path"]) if not is_glob(spec["path"]) else _glob_root(spec["path"])
    for piece in pieces:
        path = Path(piece.file)
        if fmt == "hf_disk":
            yield from read_hf_disk(path, field_name, spec, piece)
        elif fmt == "text_dir" or (fmt == "text_file" and path != root):
            yield _text_file_document(path, root, spec)
        elif fmt == "text_file":
            yield Document(_decode(path.read_bytes(), spec.get("encoding", "utf-8"), path), {"file": path.name},
                           str(path))
        elif fmt == "jsonl":
            yield from read_jsonl(path, field_name, spec, piece)
        elif fmt == "parquet":
            yield from read_parquet(path, field_name, spec, piece)


def _text_of(record, field_name: str, where) -> str:
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if field_name not in record:
        keys = ", ".join(sorted(record)) or "none"
        raise CorpusError(f"{where}: no text field '{field_name}' (keys: {keys})")
    text = record[field_name]
    if not isinstance(text, str):
        raise CorpusError(f"{where}: field '{field_name}' is {type(text).__name__}, not text")
    return text


def _decode(data: bytes, encoding: str, path: Path, first_line=1) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = int(first_line) + data.count(b"\n", 0, e.start)
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise CorpusError(f"{path}:{line}: not valid {encoding} text (byte 0x{data[e.start]:02x} at column "
                          f"{column}); set the source's `encoding` (e.g. latin-1) if the file uses another "
                          "one") from None
    except LookupError:
        raise CorpusError(f"{path}: unknown text encoding {encoding!r} (key `encoding`)") from None


@functools.lru_cache(maxsize=64)
def _lines_before(path: str, offset: int) -> int:
    count = 0
    with open(path, "rb") as f:
        while offset > 0:
            block = f.read(min(offset, 1 << 24))
            if not block:
                break
            count += block.count(b"\n")
            offset -= len(block)
    return count


class LineOf(NamedTuple):
    """Line `line` of a slice of `path` that starts at byte `start`: shown as the file's line
    number, which costs counting the lines before `start`, so it is counted only when shown."""
    path: Path
    start: int
    line: int

    def __int__(self) -> int:
        return _lines_before(str(self.path), self.start) + self.line

    def __str__(self) -> str:
        return f"{self.path}:{int(self)}"


def byte_range(size: int, piece: Piece) -> tuple[int, int]:
    return size * piece.index // piece.count, size * (piece.index + 1) // piece.count


def _lines(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[LineOf, bytes]]:
    """(line, bytes) of a JSONL file, gzip-compressed or not: the lines that start in bytes
    [start, end). A damaged archive is named with the line where it breaks."""
    compressed = path.name.endswith(".gz")
    if compressed and (start or end is not None):
        raise ValueError(f"{path}: a compressed file is read whole")
    lineno = 0
    try:
        with (gzip.open if compressed else open)(path, "rb") as f:
            if start > 0:
                f.seek(start - 1)
                if f.read(1) != b"\n":
                    start += len(f.readline())  # that line belongs to the bytes before
            position = start
            while end is None or position < end:
                raw = f.readline()
                if not raw:
                    break
                lineno += 1
                position += len(raw)
                yield LineOf(path, start, lineno), raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        what = "ends before its end (truncated?)" if isinstance(e, EOFError) else f"is not valid gzip ({e})"
        raise CorpusError(f"{path}:{lineno + 1}: the compressed file {what}; replace it with a complete copy, "
                          "or name it without .gz if it is plain text") from None


def read_jsonl(path: Path, field_name: str, spec: dict, piece: Piece | None = None,
                span: tuple[int, int | None] | None = None, keep=None) -> Iterator[Document]:
    """Documents of the lines of `piece` (or starting in the bytes `span`); with `keep`, only
    of the lines numbered n (in the file or span) for which keep(n) holds, and only those parsed."""
    encoding = spec.get("encoding", "utf-8")
    if span is None:
        span = byte_range(path.stat().st_size, piece) if piece and piece.count > 1 else (0, None)
    for where, raw in _lines(path, *span):
        if keep is not None and not keep(where.line):
            continue
        line = _decode(raw, encoding, path, where)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        text = _text_of(record, field_name, where)
        meta = {k: v for k, v in record.items() if k != field_name}
        yield Document(text, meta, where)


def parquet_groups(path: Path) -> list[int]:
    """Rows in each row group of a Parquet file (from its footer)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]


def read_parquet(path: Path, field_name: str, spec: dict, piece: Piece | None = None,
                  groups: list[int] | None = None) -> Iterator[Document]:
    """Rows of the row groups of `piece` (or the row groups `groups`, in order)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    if field_name not in pf.schema_arrow.names:
        raise CorpusError(f"{path}: no text column '{field_name}' (columns: {', '.join(pf.schema_arrow.names)})")
    if groups is None:
        groups = list(range(*byte_range(pf.num_row_groups, piece or Piece(str(path)))))
    rows = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    for g in groups:
        row = sum(rows[:g])
        for batch in pf.iter_batches(batch_size=1024, row_groups=[g]):
            for record in batch.to_pylist():
                row += 1
                yield Document(_text_of(record, field_name, f"{path}: row {row}"),
                               {k: v for k, v in record.items() if k != field_name}, f"{path}: row {row}")


def _text_file_document(path: Path, root: Path, spec: dict) -> Document:
    rel = path.relative_to(root)
    # `dir` (first sub-folder) lets a folder-per-domain layout shard by field 'dir'
    meta = {"dir": rel.parts[0] if len(rel.parts) > 1 else "", "file": str(rel)}
    return Document(_decode(path.read_bytes(), spec.get("encoding", "utf-8"), path), meta, str(path))


def read_hf_disk(path: Path, field_name: str, spec: dict, piece: Piece,
                  rows: tuple[int, int] | None = None) -> Iterator[Document]:
    """Rows of the piece's slice (or rows [start, stop))."""
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
    first, last = rows or byte_range(len(ds), piece)
    for i in range(first, last, 1024):
        batch = ds[i:min(i + 1024, last)]
        for j, text in enumerate(batch[field_name]):
            where = f"{path}: row {i + j + 1}"
            record = {k: v[j] for k, v in batch.items()}
            yield Document(_text_of(record, field_name, where), {k: v for k, v in record.items() if k != field_name},
                           where)


def source_files(path: str | Path) -> list[Path]:
    """The files that make up a source: the file itself, every file under its folder, or every
    file its glob matches (`**` crosses folders)."""
    if is_glob(path):
        return sorted(p for p in map(Path, glob.glob(str(path), recursive=True)) if p.is_file())
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def _names(path: str | Path) -> tuple[list[Path], Path | None]:
    """A source's files and the folder they are named relative to (None: a single file)."""
    if is_glob(path):
        return source_files(path), _glob_root(str(path))
    root = Path(path)
    return source_files(root), root if root.is_dir() else None


def fingerprint(path: str | Path) -> list:
    """Cheap identity of a source (names, sizes, modification times): when it still matches the
    recorded one, the content is taken as unchanged without reading it."""
    files, root = _names(path)
    return [[str(p.relative_to(root)) if root else p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def checksum(path: str | Path) -> str:
    """SHA-256 over the names and bytes of a source's files."""
    files, root = _names(path)
    digest = hashlib.sha256()
    for p in files:
        digest.update((str(p.relative_to(root)) if root else "").encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def parts(spec: dict, part_bytes: int, origin: str = "corpus") -> list[list[Piece]]:
    """The source cut into parts of about `part_bytes` on disk, each read by its own job: files
    in name order, small ones grouped, a big one cut in equal slices where its format allows
    (not a gzip file, which can only be read from its start)."""
    fmt = source_format(spec)
    out, group, size = [], [], 0
    for piece in pieces_of(spec, origin):
        path = Path(piece.file)
        bytes_ = sum(p.stat().st_size for p in source_files(path))
        sliceable = fmt in ("jsonl", "parquet", "hf_disk") and not path.name.endswith(".gz")
        if sliceable and bytes_ > part_bytes:
            if group:
                out.append(group)
                group, size = [], 0
            count = -(-bytes_ // part_bytes)
            out.extend([Piece(piece.file, i, count)] for i in range(count))
            continue
        if group and size + bytes_ > part_bytes:
            out.append(group)
            group, size = [], 0
        group.append(piece)
        size += bytes_
    if group:
        out.append(group)
    return out
