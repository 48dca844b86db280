"""Atomic file writes and the on-disk cache folder.

Every asset is written to a temporary file in the same folder and renamed into place, so a crash or a full disk
never leaves a half-written file where a good one was (``os.replace`` is atomic on POSIX and Windows).

Assets are readable by everyone (files 0644, folders 0755): a bundle is built by one user and served by another (a
service account, a Space, a shared cache). ``tempfile`` makes private 0600 files and 0700 folders (and safetensors
writes 0600 files), so what is staged that way is opened up before it is renamed into place (:func:`atomic_path`,
:func:`share_tree`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

FILE_MODE = 0o644
DIR_MODE = 0o755


def cache_dir() -> Path:
    """Where converted word vectors and the offline bundle live (``$SEARCH_CACHE_DIR``, else the XDG cache)."""
    if os.environ.get("SEARCH_CACHE_DIR"):
        return Path(os.environ["SEARCH_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "semantic-search"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on failure removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, FILE_MODE)  # mkstemp makes 0600 files; assets are meant to be read by servers and users
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def share_tree(root: str | os.PathLike) -> None:
    """Make ``root`` and every folder under it 0755 and every file 0644: for a folder staged with ``tempfile`` or
    written by another library, and for a tree copied from a bundle written before assets were readable by all
    (``shutil.copytree`` keeps the modes it finds)."""
    root = Path(root)
    os.chmod(root, DIR_MODE)
    for path in root.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` that :func:`numpy.savez` wrote (uncompressed), memory-mapped where they are stored
    plainly: ``numpy.load`` reads every member of an archive whole, which for a large bundle's tables is seconds
    of reading at every start for lists that a query touches a few of."""
    import zipfile

    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with archive.open(info) as member:
                    out[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            # the member's data follows its local header (30 bytes, then its name and extra field)
            handle.seek(info.header_offset + 26)
            name_len, extra_len = np.frombuffer(handle.read(4), "<u2")
            handle.seek(info.header_offset + 30 + int(name_len) + int(extra_len))
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(handle)
            if dtype.hasobject:
                raise ValueError(f"{name} holds Python objects, which a bundle never stores")
            if not shape or 0 in shape:  # a scalar or an empty array: nothing worth mapping
                out[name] = np.frombuffer(handle.read(dtype.itemsize * int(np.prod(shape))), dtype).reshape(shape)
                continue
            out[name] = np.memmap(path, dtype, "r", offset=handle.tell(), shape=shape,
                                  order="F" if fortran else "C")
    return out
