"""Executing the kit's notebooks with papermill.

Notebooks are committed as jupytext percent scripts (``notebooks/*.py``), so reviews see
code, never outputs. This module turns one into a notebook in memory, checks the requested
parameters against the notebook's ``parameters`` cell (a misspelled name is an error, not a
silently ignored value), and executes it on the ``cephalo`` Jupyter kernel. The executed
``.ipynb`` (with outputs, or with the failing cell marked) is the run's record.
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from papermill.inspection import _infer_parameters
from traitlets import CaselessStrEnum, default

from cephalo.errors import CephaloError, NotFound
from cephalo.paths import NOTEBOOKS

KERNEL = "cephalo"


class UnixSocketKernelManager(AsyncKernelManager):
    """Kernels reached over Unix sockets in a private folder instead of TCP ports: kernels
    started at the same moment by several processes (batch workers, tuning workers) cannot
    clash over a port that each saw free."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _private_socket_prefix(self) -> str:
        return str(Path(tempfile.mkdtemp(prefix="cephalo-kernel-")) / "kernel")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart)
        if not restart:
            shutil.rmtree(Path(self.ip).parent, ignore_errors=True)


class ParameterError(CephaloError, ValueError):
    """A parameter the notebook does not declare."""


def notebook_path(name: str | os.PathLike[str]) -> Path:
    """A notebook by path, or by name in the kit's ``notebooks/`` folder (``"explore_data"``)."""
    path = Path(name)
    if path.exists():
        return path
    candidate = NOTEBOOKS / f"{path.stem}.py"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in NOTEBOOKS.glob("*.py"))
    raise NotFound(f"no notebook {str(name)!r}; the kit's notebooks are {known}")


def load(path: str | os.PathLike[str]) -> nbformat.NotebookNode:
    """A notebook from a jupytext script or an ``.ipynb``."""
    node = jupytext.read(notebook_path(path))
    for cell in node.cells:
        cell.metadata.setdefault("tags", [])  # papermill expects them on every cell
    return node


def declared_parameters(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """Name -> default (as source text) of the notebook's ``parameters`` cell."""
    return {p.name: p.default for p in _infer_parameters(notebook)}


def check_parameters(
    notebook: nbformat.NotebookNode, parameters: Mapping[str, Any], name: str = "notebook"
) -> None:
    """Refuse parameters the notebook does not declare, suggesting the close ones."""
    declared = declared_parameters(notebook)
    for key in parameters:
        if key not in declared:
            close = difflib.get_close_matches(key, declared, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParameterError(
                f"{name} has no parameter {key!r}{hint} (it declares: {', '.join(declared)})"
            )


def execute(
    notebook: str | os.PathLike[str],
    output: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    log_output: bool = False,
) -> Path:
    """Execute ``notebook`` with ``parameters`` into ``output`` (.ipynb) on the ``cephalo``
    kernel. Raises papermill's ``PapermillExecutionError`` when a cell fails; the output
    notebook is written either way, showing the failing cell."""
    source = notebook_path(notebook)
    node = load(source)
    parameters = dict(parameters or {})
    check_parameters(node, parameters, name=source.name)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        node,
        str(output),
        parameters=parameters,
        kernel_name=KERNEL,
        language="python",
        cwd=str(cwd) if cwd else None,
        progress_bar=False,
        log_output=log_output,
        kernel_manager_class=UnixSocketKernelManager,
    )
    return output


def describe_failure(failure: Exception) -> str:
    """One line for a notebook that raised (papermill's error: the exception and its cell)
    or could not run (a dead kernel, a kernel that would not start)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(failure, PapermillExecutionError):
        return f"{failure.ename}: {failure.evalue} (cell [{failure.exec_count}])"
    return f"{type(failure).__name__}: {failure}"


def export_html(notebook: str | os.PathLike[str], html: str | os.PathLike[str]) -> Path:
    """An executed notebook as one self-contained HTML page (figures embedded as PNG), the
    report a browser opens: its outputs and text, not its code."""
    from nbconvert import HTMLExporter

    from cephalo.files import atomic_open

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True)
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, 4))
    with atomic_open(html, "w") as f:
        f.write(body)
    return Path(html)
