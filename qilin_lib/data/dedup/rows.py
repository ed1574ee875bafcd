"""The stored rows of kept documents (MinHash signature + verification sketches), on disk rather than in RAM.

A row is read back only when its document is a candidate of a later one, so rows go to an append-only
temporary file and come back with `os.pread` (a copy of just the candidates' rows: the page cache holding
the file is the kernel's, not this process's resident memory; a memory map would count every page it
touches in the process's RSS).

The file is anonymous where the OS allows (`tempfile.TemporaryFile`: unlinked at once on POSIX), in a
directory the caller picks (`tmp_dir`, default `tempfile.gettempdir()`); it disappears when the store is
closed or garbage-collected, and even if the process is killed. A store that crosses a `fork` (a
multi-process data stage) copies its rows into a file of its own in the child before touching them, so
parent and child never write over each other; pickling carries the rows.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

_HAS_PREAD = hasattr(os, "pread")


class RowStore:
    """Fixed-width uint16 rows and the stream index of their document, addressed by slot (0, 1, 2, ...)."""

    def __init__(self, width: int, tmp_dir: str | os.PathLike | None = None):
        self.width = width
        self.tmp_dir = None if tmp_dir is None else os.fspath(tmp_dir)
        self.dtype = np.dtype([("row", "<u2", (width,)), ("doc", "<i8")])
        self.size = 0
        self._file = None
        self._pid = os.getpid()

    # -- file
    def _fd(self) -> int:
        if self._file is None or self._pid != os.getpid():
            self._open_own()
        return self._file.fileno()

    def _open_own(self) -> None:
        """A new file for this process (first use, or first use after a fork), holding the rows so far."""
        old = self._file
        new = tempfile.TemporaryFile(prefix="qilin-dedup-rows-", suffix=".bin", dir=self.tmp_dir)
        if old is not None:
            step = max(1, (64 << 20) // self.dtype.itemsize)
            for s in range(0, self.size, step):
                new.write(_read_at(old, s * self.dtype.itemsize, min(step, self.size - s) * self.dtype.itemsize))
            new.flush()
        # after a fork, dropping `old` closes only this process's descriptor: the parent keeps its file
        self._file, self._pid = new, os.getpid()

    def close(self) -> None:
        """Remove the file (the rows are gone; the store is empty again)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self.size = None, 0

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:                              # interpreter shutdown: the OS removes it anyway
            pass

    def __getstate__(self) -> dict:
        state = dict(self.__dict__, _file=None, _pid=None)
        state["_rows"] = _read_at(self._file, 0, self.size * self.dtype.itemsize) if self.size else b""
        return state

    def __setstate__(self, state: dict) -> None:
        data = state.pop("_rows")
        self.__dict__.update(state)
        self._file, self._pid = None, os.getpid()
        if data:
            self._open_own()
            self._file.write(data)
            self._file.flush()

    # -- rows
    def append(self, rows: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Store rows (n, width) of documents `docs`; returns their slots."""
        n = len(rows)
        rec = np.empty(n, dtype=self.dtype)
        rec["row"] = rows
        rec["doc"] = docs
        fd = self._fd()
        _write_at(self._file, fd, self.size * self.dtype.itemsize, rec.tobytes())
        slots = np.arange(self.size, self.size + n, dtype=np.int64)
        self.size += n
        return slots

    def read(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows (k, width) uint16, docs (k,) int64) of sorted unique slots; consecutive slots are read
        with one call."""
        slots = np.asarray(slots, dtype=np.int64)
        if not len(slots):
            return np.empty((0, self.width), np.uint16), np.empty(0, np.int64)
        if slots[0] < 0 or slots[-1] >= self.size:
            raise IndexError(f"RowStore: slots {int(slots[0])}..{int(slots[-1])} outside 0..{self.size - 1}")
        fd, item = self._fd(), self.dtype.itemsize
        cut = np.flatnonzero(np.diff(slots) != 1) + 1
        starts = np.concatenate(([0], cut)).tolist()
        stops = np.concatenate((cut, [len(slots)])).tolist()
        first = slots[starts].tolist()
        out = bytearray(len(slots) * item)
        view = memoryview(out)
        for a, b, s in zip(starts, stops, first):
            chunk = _pread(self._file, fd, (b - a) * item, s * item)
            view[a * item:b * item] = chunk
        rec = np.frombuffer(out, dtype=self.dtype)
        return rec["row"], rec["doc"]

    @property
    def nbytes(self) -> int:
        """Bytes on disk."""
        return self.size * self.dtype.itemsize


def _pread(fh, fd: int, n: int, offset: int) -> bytes:
    if _HAS_PREAD:
        data = os.pread(fd, n, offset)
        while len(data) < n:                           # short reads are allowed; finish the range
            more = os.pread(fd, n - len(data), offset + len(data))
            if not more:
                raise OSError(f"RowStore: file ends at {offset + len(data)}, wanted {offset + n}")
            data += more
        return data
    fh.seek(offset)
    data = fh.read(n)
    if len(data) != n:
        raise OSError(f"RowStore: file ends at {offset + len(data)}, wanted {offset + n}")
    return data


def _read_at(fh, offset: int, n: int) -> bytes:
    return _pread(fh, fh.fileno(), n, offset) if n else b""


def _write_at(fh, fd: int, offset: int, data: bytes) -> None:
    if hasattr(os, "pwrite"):
        view = memoryview(data)
        while len(view):
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
    else:
        fh.seek(offset)
        fh.write(data)
        fh.flush()
