"""Writing files so that an interrupted write never leaves one that looks complete, and
reading the JSON inputs a user gives with an error that names the file."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder, so the rename cannot cross file systems; "x" refuses to reuse a name.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, mode.replace("w", "x")) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dump_json(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented JSON at ``path``, written atomically (:func:`atomic_open`)."""
    with atomic_open(path, "w") as f:
        f.write(json.dumps(data, indent=1) + "\n")


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """The JSON document at ``path``; a missing or malformed file is a DataError naming it
    and ``what`` it was supposed to be."""
    from cephalo.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file ({what})")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
