"""Errors the kit raises for bad input, so the CLI can print them as one clear line."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ValidationError


class DataError(ValueError):
    """An input file is malformed or inconsistent; the message names the file, slice and
    landmark concerned."""


class DeviceError(RuntimeError):
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
