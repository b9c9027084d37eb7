"""The default blob store: one file per key under a local folder (``.answerdesk/lineage/`` by default).

A write goes to a temporary file in the same folder and is renamed over the key, so a crash or a concurrent
reader never sees half a record. There is no fsync per record: on power loss the last records may be
missing, never torn, and a sync per request would cost more than the rest of the recording.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from answerdesk.errors import InputError, NotFound, StoreError


class LocalBlobStore:
    """:class:`~answerdesk.lineage.base.BlobStore` over a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise InputError(f"not a valid blob key: '{key}'")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                Path(tmp).replace(path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"cannot write lineage blob {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no lineage blob '{key}'") from exc
        except OSError as exc:
            raise StoreError(f"cannot read lineage blob {key}: {exc}") from exc

    def names(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return iter(())
        found = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return iter(sorted(found))

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot delete lineage blob {key}: {exc}") from exc
