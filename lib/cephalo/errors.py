"""The kit's own errors: bad input, a file that is not there, a device that is missing.

Every one derives from :class:`CephaloError`; the CLI prints those as one clear line (exit
status 1) and lets anything else, a programming error, show its traceback. Each keeps the
built-in base a caller may already catch (``ValueError``, ``FileNotFoundError``, ...).
"""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ValidationError


class CephaloError(Exception):
    """An error of the kit's own making: its message says what is wrong and where."""


class DataError(CephaloError, ValueError):
    """An input file is malformed or inconsistent; the message names the file, slice and
    landmark concerned."""


class NotFound(CephaloError, FileNotFoundError):
    """A file or folder the kit needs is not there (a registry before any run, a run
    without a checkpoint, an unknown notebook)."""


class ParamsError(CephaloError, ValueError):
    """Training parameters that cannot be used; one line per problem."""


class DeviceError(CephaloError, RuntimeError):
    """The device asked for is not there (``device: cuda`` on a machine without a GPU)."""


def validation_problems(error: ValidationError, model: type[BaseModel]) -> list[str]:
    """One readable line per problem pydantic found, with a "did you mean" for unknown names."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "parameters"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            name = str(item["loc"][-1])
            close = difflib.get_close_matches(name, model.model_fields, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            message = f"unknown name; {hint}(known: {', '.join(model.model_fields)})"
        problems.append(f"{where}: {message}")
    return problems
