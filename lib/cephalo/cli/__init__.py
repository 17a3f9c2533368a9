"""The ``cephalo`` command line: one group (:mod:`.main`) with its one error handler, and one
module per stage of the recipe (:mod:`.data`, :mod:`.experiments`, :mod:`.tuning`,
:mod:`.ensemble`, :mod:`.evaluate`, :mod:`.container`), each imported when its command runs.
The modules only parse options and print: the work is done by the library."""

from cephalo.cli.main import main

__all__ = ["main"]
