"""Atomic file and directory writes: a reader never sees a half-written result.

Files are written to a temporary sibling and moved into place with :func:`os.replace`,
which is atomic on POSIX file systems; on any exception (``KeyboardInterrupt`` included)
the temporary file is removed and the destination is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` only on success.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(d / "a.txt") as fh:
    ...     _ = fh.write("hello")
    >>> (d / "a.txt").read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
        open_kwargs.setdefault("newline", "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600: respect the umask
    try:
        with open(tmp, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask (read from /proc where possible, else set and restored)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """``tempfile.mkdtemp`` with the umask's permissions instead of 0700."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o777 & ~current_umask())
    return path


def partial_dir(parent: str | Path, name: str) -> Path:
    """A fresh work folder ``.<name>.partial-<pid>-XXXX`` beside the final one (umask
    permissions); :func:`sweep_partials` removes it later if this process dies."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    return make_temp_dir(parent, f".{name}.partial-{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_partials(parent: str | Path, name: str, *, max_age_s: float = 86_400.0) -> list[Path]:
    """Remove work folders of ``name`` left by a killed run: those whose process is gone
    (or, for older names without a pid, older than ``max_age_s``).  Returns what was removed."""
    import time

    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    for path in parent.glob(f".{name}.partial-*"):
        tail = path.name[len(f".{name}.partial-"):]
        pid = tail.split("-", 1)[0]
        if pid.isdigit() and "-" in tail:
            stale = not _alive(int(pid))
        else:
            try:
                stale = time.time() - path.stat().st_mtime > max_age_s
            except OSError:
                continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def check_output(path: str | Path, *, inputs: Iterable[str | Path] = (), option: str = "--out",
                 directory: bool = False) -> Path:
    """Fail before any work when ``path`` cannot receive the output.

    Raises :class:`~compendium.errors.ConfigError` (one line, exit 2) when ``path`` is a
    directory (for a file output) or a file (for a folder output), is one of ``inputs``,
    or its folder cannot be written (missing permission, read-only file system, a place
    such as ``/proc``).  Nothing is left behind by the check.
    """
    from .errors import ConfigError

    path = Path(path).expanduser()
    if not directory and path.is_dir():
        raise ConfigError(f"{option} {path} is a directory: give a file name")
    if directory and path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file: give a folder")
    for item in inputs:
        item = Path(item).expanduser()
        same = path.resolve() == item.resolve()
        if not same and path.exists() and item.exists():
            same = os.path.samefile(path, item)
        if same:
            raise ConfigError(f"{option} {path} is also an input: choose another name, "
                              "the input would be overwritten")
    parent = path if directory else path.parent
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{option} {path}: {probe} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-check.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write in {probe} "
                          f"({exc.strerror or exc})") from None
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as pretty, key-sorted JSON atomically."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    return Path(path)


def replace_dir(src: str | Path, dst: str | Path) -> Path:
    """Move the finished directory ``src`` to ``dst``, replacing any previous ``dst``.

    The old directory is first renamed aside, so that at every instant ``dst`` is either
    the complete old result or the complete new one.
    """
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if dst.exists():
        old = make_temp_dir(dst.parent, f".{dst.name}.old-")
        os.replace(dst, old / dst.name)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dst
