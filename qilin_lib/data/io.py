"""File access for loaders: hub-or-local path resolution, decoding with useful errors, JSON / JSON lines.

The `paper` profile names hub files as `hf://datasets/<repo>/<file>`; tests and the tiny profile pass local
paths. Both go through `resolve_path`, so the hub code path stays real even when tests never call it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from .errors import DataFormatError, UndecodableLine

HUB_PREFIX = "hf://datasets/"
# Encodings we try, in order, to tell the user what to declare when a file does not decode.
_CANDIDATE_ENCODINGS = ("utf-8-sig", "gbk", "gb18030", "big5", "utf-16")


def resolve_path(spec: str | Path, revision: str | None = None) -> Path:
    """A local path as is, or `hf://datasets/<owner>/<name>/<file>` downloaded (and cached) from the hub."""
    text = str(spec)
    if text.startswith(HUB_PREFIX):
        owner, name, *rest = text[len(HUB_PREFIX):].split("/")
        if not rest:
            raise ValueError(f"{text}: expected hf://datasets/<owner>/<name>/<file>")
        from huggingface_hub import hf_hub_download  # imported lazily: tests never reach the hub

        return Path(hf_hub_download(repo_id=f"{owner}/{name}", filename="/".join(rest),
                                    repo_type="dataset", revision=revision))
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (from data spec {text!r})")
    return path


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Decode a whole file; a wrong encoding is an error that says where and which encoding to declare."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(path, None, f"not valid {encoding} at line {line} "
                                          f"{_encoding_hint(raw, encoding, exc)}") from None
    return text.lstrip("\ufeff")  # a BOM is never content


def decode_line(path: str | Path, lineno: int, raw: bytes, encoding: str = "utf-8") -> str:
    """One line of a line-oriented file; one that does not decode raises `UndecodableLine`."""
    try:
        return raw.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise UndecodableLine(path, lineno, encoding, _encoding_hint(raw, encoding, exc)) from None


def iter_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str | UndecodableLine]]:
    """(line number, text) of each non-blank line, streamed from the bytes and decoded line by line.

    A line that does not decode comes back as its `UndecodableLine`, for the caller to raise inside that
    record's guard: under errors="skip" one bad line then costs one record, not the file.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                value: str | UndecodableLine = decode_line(path, lineno, raw, encoding)
            except UndecodableLine as exc:
                value = exc
            yield lineno, value


def _encoding_hint(raw: bytes, declared: str, exc: UnicodeDecodeError) -> str:
    for candidate in _CANDIDATE_ENCODINGS:
        if candidate.replace("-sig", "") == declared.lower():
            continue
        if candidate == "utf-16" and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue  # without a BOM nearly any even-length bytes "decode" as UTF-16
        try:
            raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        return (f"(byte {exc.start}: {raw[exc.start:exc.start + 2]!r}); "
                f"it decodes as {candidate}: declare encoding={candidate!r}")
    return f"(byte {exc.start}: {raw[exc.start:exc.start + 2]!r}) and no known Chinese encoding fits"


def read_json(path: str | Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
