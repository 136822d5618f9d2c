#!/usr/bin/env python3
"""Run the analyst notebooks headless over a reports folder, or check that they are committed clean.

    .venv/bin/python notebooks/execute.py --reports DIR notebooks/*.ipynb
    .venv/bin/python notebooks/execute.py --check-clean notebooks/*.ipynb

Each notebook runs in its own folder as working directory, on an ipykernel of this very
interpreter (never a kernelspec found elsewhere on the machine), with UNREDEEMED_REPORTS set to
DIR (absolute) and matplotlib on the Agg backend, each cell limited to CELL_TIMEOUT. The committed
notebooks are only read: executed copies are written only with --keep DIR (those run with the
inline backend, so that they carry the charts). Committed notebooks must carry no outputs,
execution counts or run metadata; that is checked before every run too. Exit status 1 on any
failure, naming the notebook and the cell.
"""

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

CELL_TIMEOUT = 120  # seconds per cell
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ThisInterpreter(KernelSpecManager):
    """Every kernel name resolves to ipykernel on sys.executable (the venv running this script)."""

    def get_kernel_spec(self, kernel_name):
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python ({sys.prefix})",
            language="python",
        )


def dirty(nb):
    """What makes a notebook unfit to commit: outputs, execution counts, a missing parameters cell."""
    problems = []
    code = [(i, c) for i, c in enumerate(nb.cells, 1) if c.cell_type == "code"]
    if not code or "parameters" not in code[0][1].metadata.get("tags", []):
        problems.append("the first code cell is not tagged 'parameters'")
    for i, cell in code:
        if cell.outputs:
            problems.append(f"cell {i} has {len(cell.outputs)} output(s)")
        if cell.execution_count is not None:
            problems.append(f"cell {i} has execution_count {cell.execution_count}")
        if "execution" in cell.metadata:
            problems.append(f"cell {i} has execution timing metadata")
    return problems


def check(path):
    nb = nbformat.read(path, as_version=4)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        return nb, [f"{path}: not a valid notebook: {e.message}"]
    return nb, [f"{path}: {p}" for p in dirty(nb)]


def execute(path, nb, reports, keep):
    """Runs nb; returns None when every cell succeeded, else (one-line reason, details)."""
    # Agg: never a GUI. Executed copies that are kept get the charts as images instead, through
    # the inline backend (itself Agg-based, equally headless).
    backend = "Agg" if keep is None else "module://matplotlib_inline.backend_inline"
    env = dict(os.environ, UNREDEEMED_REPORTS=str(reports), MPLBACKEND=backend)
    current = {}

    def on_cell_start(cell, cell_index):
        current.update(index=cell_index + 1, id=cell.get("id", "?"))

    # Unix sockets in a private temporary folder rather than TCP ports on localhost.
    sockets = tempfile.TemporaryDirectory(prefix="unredeemed-nb-")
    km = KernelManager(kernel_spec_manager=ThisInterpreter(), transport="ipc", ip=os.path.join(sockets.name, "kernel"))
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=on_cell_start,
    )
    error = details = None
    try:
        client.execute(env=env, cleanup_kc=True)  # cleanup_kc: shut the kernel down after the last cell
    except CellTimeoutError:
        error = f"timed out after {CELL_TIMEOUT} s"
    except CellExecutionError as e:
        error, details = f"{e.ename}: {e.evalue}", ANSI.sub("", e.traceback)
    except DeadKernelError as e:
        error = f"kernel died: {e}"
    except Exception as e:  # the kernel did not start, ...: still name the notebook
        error = f"{type(e).__name__}: {e}"
    finally:
        if km.has_kernel:  # it failed to start or to answer
            km.shutdown_kernel(now=True)
        sockets.cleanup()
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, keep / path.name)
    if error is None:
        return None
    where = f"cell {current['index']} (id {current['id']})" if current else "kernel start"
    return f"{path}: {where} failed: {error}", details


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--reports", type=Path, help="reports folder of an unredeemed run (UNREDEEMED_REPORTS)")
    ap.add_argument("--keep", type=Path, help="write the executed copies (with their charts) into this folder")
    ap.add_argument("--check-clean", action="store_true", help="only check that the notebooks carry no outputs")
    args = ap.parse_args()
    if not args.check_clean and args.reports is None:
        ap.error("--reports DIR is required unless --check-clean")

    paths = [p.resolve() for p in args.notebooks]
    keep = args.keep.resolve() if args.keep else None
    if keep is not None and any(keep / p.name == p for p in paths):
        ap.error("--keep would overwrite the committed notebooks: choose another folder")

    failures, checked, unclean = [], [], 0
    for path in paths:
        nb, problems = check(path)
        failures += problems
        unclean += bool(problems)
        checked.append((path, nb))
    if args.check_clean:
        print("\n".join(failures + [f"{len(paths) - unclean} of {len(paths)} notebook(s) clean"]))
        return 1 if failures else 0

    reports = args.reports.resolve()
    for path, nb in checked:
        started = time.monotonic()
        result = execute(path, nb, reports, keep)
        print(f"{'FAILED' if result else 'ok':6} {path.name} ({time.monotonic() - started:.1f} s)", flush=True)
        if result:
            error, details = result
            if details:
                print(details, file=sys.stderr, flush=True)
            failures.append(error)
    # The reasons last, where a CI log is read.
    print("\n".join(failures + [f"{len(paths)} notebook(s) over {reports}: {'FAILED' if failures else 'all ran'}"]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
