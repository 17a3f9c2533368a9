"""Errors the kit raises for bad input, so the CLI can print them as one clear line."""


class DataError(ValueError):
    """An input file is malformed or inconsistent; the message names the file, slice and
    landmark concerned."""
