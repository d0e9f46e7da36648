"""The export's output folder: what `--overwrite` may replace, and how it is replaced.

An export folder carries a marker file that lists what the export wrote. `--overwrite` replaces
only such a folder, and only while it holds nothing but what the marker lists, so it can never
delete a training run, the model being exported, a folder of the user's or a plain file.

The new export is written into a hidden sibling `.<name>.partial-*` and renamed into place; the
old one is first renamed to `.<name>.old-*` and deleted after the rename. A kill between the
steps leaves those siblings behind; the next export to the same folder removes them (only those
holding our marker, written by a process that is no longer running).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

MARKER = ".perceiver-keras-export.json"
"""The file that marks a folder as written by `export_model`."""


class OutputDirError(ValueError):
    """`out_dir` cannot be written or replaced; the message says why and what to do."""


def check_out_dir(out_dir: Path, overwrite: bool, protected: Iterable[str | os.PathLike] = ()) -> None:
    """Raises unless `out_dir` may be created, or (with `overwrite`) replaced.

    Args:
        out_dir: the export folder.
        overwrite: whether an existing export folder may be replaced.
        protected: paths that must survive the export (the source model or run directory): `out_dir`
            may not be one of them, nor contain one.

    Raises:
        FileExistsError: `out_dir` exists and `overwrite` is False.
        OutputDirError: `out_dir` is a file, is or contains a protected path, is not an export
            folder, holds files the export did not write, or its parent is not writable.
    """
    out_dir = Path(out_dir).absolute()
    resolved = out_dir.resolve()
    for path in protected:
        path = Path(path).absolute().resolve()
        if resolved == path or resolved in path.parents:
            raise OutputDirError(
                f"--out {out_dir} would replace the source {path}, which it "
                f"{'is' if resolved == path else 'contains'}. Choose a new folder for the export."
            )
    if out_dir.exists() or out_dir.is_symlink():
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise OutputDirError(
                f"--out {out_dir} is a file, not a folder; it is left as it is. Choose a folder path for the export."
            )
        if not overwrite:
            raise FileExistsError(
                f"{out_dir} already exists. Pass overwrite=True (CLI: --overwrite) to replace an earlier export there."
            )
        written = _written_by_export(out_dir)
        if written is None:
            raise OutputDirError(
                f"--overwrite replaces only a folder that an earlier export wrote, and {out_dir} was not "
                f"(it has no {MARKER}); it is left as it is. Choose a new folder for the export."
            )
        others = sorted(entry.name for entry in out_dir.iterdir() if entry.name not in written)
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise OutputDirError(
                f"--overwrite would delete files in {out_dir} that the export did not write: {shown}. "
                "Move them away or choose a new folder."
            )
    parent = _existing_ancestor(out_dir.parent)
    if not parent.is_dir():
        raise OutputDirError(f"--out {out_dir}: {parent} is a file, so no folder can be made there. Choose a folder "
                             "path for the export.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputDirError(f"Cannot create {out_dir}: {parent} is not writable.")


def _existing_ancestor(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _written_by_export(folder: Path) -> set[str] | None:
    """The names listed by the folder's marker (itself included), or None if it has no valid marker."""
    try:
        marker = json.loads((folder / MARKER).read_text())
        return {MARKER, *marker["written"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def make_work_dir(out_dir: Path) -> Path:
    """A fresh hidden sibling of `out_dir` to export into, after removing those of killed exports."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out_dir)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    _write_marker(work, written=[], pid=os.getpid())
    return work


def finish(work: Path, out_dir: Path, overwrite: bool) -> None:
    """Marks `work` complete, gives it the user's umask and renames it to `out_dir`."""
    _write_marker(work, written=sorted(entry.name for entry in work.iterdir() if entry.name != MARKER), pid=None)
    _apply_umask(work)
    if not out_dir.exists():
        work.rename(out_dir)
        return
    if not overwrite:
        raise FileExistsError(f"{out_dir} appeared during the export. Pass overwrite=True to replace it.")
    check_out_dir(out_dir, overwrite)  # it may have changed since the export began
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()
    out_dir.rename(old)
    work.rename(out_dir)
    shutil.rmtree(old)


def remove_stale(out_dir: Path) -> list[Path]:
    """Removes `.<name>.partial-*` / `.<name>.old-*` siblings of killed exports; returns them.

    Only folders holding our marker go, and a partial one only if the process that wrote it is gone.
    """
    removed = []
    if not out_dir.parent.is_dir():
        return removed
    for kind in ("partial", "old"):
        for folder in out_dir.parent.glob(f".{out_dir.name}.{kind}-*"):
            if not folder.is_dir() or folder.is_symlink() or _written_by_export(folder) is None:
                continue
            if kind == "partial" and _writer_alive(folder):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _writer_alive(folder: Path) -> bool:
    try:
        pid = json.loads((folder / MARKER).read_text()).get("pid")
    except (OSError, ValueError):
        return False
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_marker(folder: Path, written: list[str], pid: int | None) -> None:
    payload = {"written_by": "perceiver-keras export", "written": written}
    if pid is not None:
        payload["pid"] = pid
    (folder / MARKER).write_text(json.dumps(payload, indent=2) + "\n")


def _apply_umask(folder: Path) -> None:
    """`tempfile.mkdtemp` makes folders 0700 whatever the umask; give them the mode `mkdir` would."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
