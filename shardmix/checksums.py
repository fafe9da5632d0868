"""SHA-256 seals on every artifact, checked where the artifact is used and before a run plans.

A folder artifact (a model, a tokenizer, a source's token files) holds `SHA256SUMS`, written
last, in `sha256sum` format: `cd <folder> && sha256sum -c SHA256SUMS` verifies it by hand. A file
artifact (a score batch, a record, an eval set's tokens) has its sum beside it in `<file>.sha256`,
written before the file is renamed into place. Either way a seal never claims a state that was
not written whole: a kill between the two leaves a sum that does not match, which reads as
damaged and is rebuilt.

Two depths of check:
- `scan` (before a run plans, every sealed artifact of a results folder): a file changed since
  its seal was written has a newer modification time; only such files are hashed. Cost: a
  `stat` per file, plus hashing what changed.
- `check` (where a job reads an artifact): every byte hashed. A damaged file is marked (its
  modification time set to now, its bytes left as they are), so the next run's `scan` finds
  it and the run rebuilds it, even where the damage kept the file's time (bit rot).

Artifacts written before seals existed have none and are taken as they are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SUMS = "SHA256SUMS"
SIDECAR = ".sha256"
DAMAGED = ".damaged"
BLOCK = 1 << 20


class DamagedArtifact(ValueError):
    """An artifact whose bytes no longer match the checksum written when it was produced."""


@dataclass(frozen=True)
class Damage:
    path: Path  # the artifact: a sealed folder or a sealed file
    why: str

    def __str__(self) -> str:
        return f"{self.path}: damaged ({self.why})"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _line(digest: str, name: str) -> str:
    return f"{digest}  {name}\n"


def _parse(text: str, where: Path) -> dict[str, str]:
    sums = {}
    for n, line in enumerate(text.splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ValueError(f"{where}:{n}: not a sha256sum line")
        sums[name] = digest
    return sums


def seal_dir(folder: str | Path) -> None:
    """Write `SHA256SUMS` over every file of `folder` (call it last, before the folder is renamed)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != SUMS)
    text = "".join(_line(sha256_file(p), p.relative_to(folder).as_posix()) for p in files)
    (folder / SUMS).write_text(text)


def seal_file(path: str | Path, written: str | Path) -> None:
    """Write `<path>.sha256` for the finished bytes at `written` (the temp file renamed to `path` next)."""
    path = Path(path)
    sidecar = _sidecar(path)
    tmp = sidecar.with_name(sidecar.name + ".partial")
    tmp.write_text(_line(sha256_file(written), path.name))
    os.replace(tmp, sidecar)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR)


def is_sealed(path: str | Path) -> bool:
    path = Path(path)
    return (path / SUMS).exists() if path.is_dir() else _sidecar(path).exists()


def _verify_dir(folder: Path, quick: bool, only: str | None = None) -> tuple[str, Path] | None:
    """(why, the file to blame) for a damaged sealed folder, else None."""
    seal = folder / SUMS
    try:
        sums = _parse(seal.read_text(), seal)
        sealed_at = seal.stat().st_mtime_ns
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"unreadable {SUMS}: {e}", seal
    for name, digest in sums.items():
        if only is not None and name != only:
            continue
        file = folder / name
        try:
            changed = file.stat().st_mtime_ns > sealed_at
        except OSError:
            return f"{name} is missing", seal
        if (changed or not quick) and sha256_file(file) != digest:
            return f"{name} does not match its checksum in {SUMS}", file
    if only is not None and only not in sums:
        return f"{only} is not listed in {SUMS}", seal
    return None


def _verify_file(path: Path, quick: bool) -> tuple[str, Path] | None:
    sidecar = _sidecar(path)
    try:
        sums = _parse(sidecar.read_text(), sidecar)
        sealed_at = sidecar.stat().st_mtime_ns
        changed = path.stat().st_mtime_ns > sealed_at
    except FileNotFoundError:
        return "missing", path
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"unreadable {sidecar.name}: {e}", path
    if (changed or not quick) and sha256_file(path) != sums.get(path.name):
        return f"does not match its checksum in {sidecar.name}", path
    return None


def verify(path: str | Path, quick: bool = False) -> str | None:
    """Why the artifact at `path` is damaged, or None (also for an unsealed one)."""
    path = Path(path)
    if not path.exists() or not is_sealed(path):
        return None
    found = _verify_dir(path, quick) if path.is_dir() else _verify_file(path, quick)
    return found[0] if found else None


_checked: dict[tuple, None] = {}  # (artifact, seal time, sizes and times of its files) verified by this process


def check(path: str | Path, member: str | Path | None = None) -> None:
    """Hash every byte of the artifact at `path` (or only `member`, a file inside the sealed
    folder `path`) against its seal; for a damaged one, the file to blame is marked for the next
    scan and DamagedArtifact raised. Each artifact is hashed once per process while its files'
    sizes and times stay the same."""
    path = Path(path)
    if not path.exists() or not is_sealed(path):
        return
    seal = path / SUMS if path.is_dir() else _sidecar(path)
    files = [path / member] if member else sorted(path.rglob("*")) if path.is_dir() else [path]
    stats = [f.stat() for f in files if f.is_file()]
    key = (f"{path}:{member or ''}", seal.stat().st_mtime_ns, tuple((s.st_size, s.st_mtime_ns) for s in stats))
    if key in _checked:
        return
    found = (_verify_dir(path, quick=False, only=Path(member).as_posix() if member else None) if path.is_dir()
             else _verify_file(path, quick=False))
    if found:
        why, blamed = found
        if blamed.exists() and blamed != seal:
            os.utime(blamed)  # newer than its seal: the next scan hashes it and plans the rebuild
        raise DamagedArtifact(f"{path}: damaged ({why}); rerun snakemake, which rebuilds it")
    _checked[key] = None


def check_file(path: str | Path) -> None:
    """Check one file: against its own seal, or against the seal of the folder it lies in."""
    path = Path(path)
    if (path.parent / SUMS).exists():
        check(path.parent, path.name)
    else:
        check(path)


def set_aside(path: Path) -> Path:
    """Move a damaged artifact of a results folder (and its sum) out of the way, kept for a look:
    the next run sees it missing and makes it again."""
    aside = path.with_name(path.name + DAMAGED)
    if aside.is_dir():
        shutil.rmtree(aside)
    os.replace(path, aside)
    sidecar = _sidecar(path)
    if sidecar.exists():
        os.replace(sidecar, _sidecar(aside))
    return aside


SKIPPED = (".partial", ".resume", DAMAGED)


def scan(root: str | Path) -> list[Damage]:
    """Every sealed artifact under `root` that changed since it was sealed (quick check)."""
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.endswith(SKIPPED))
        if SUMS in files:
            damage = _verify_dir(here, quick=True)
            if damage:
                found.append(Damage(here, damage[0]))
            dirs[:] = []  # a sealed folder is one artifact
            continue
        for name in sorted(files):
            if name.endswith(SIDECAR):
                target = here / name[: -len(SIDECAR)]
                damage = _verify_file(target, quick=True) if target.exists() else None
                if damage:
                    found.append(Damage(target, damage[0]))
    return found
