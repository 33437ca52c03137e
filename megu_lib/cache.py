"""A content-addressed cache for trained models and other tensors.

Entries are keyed by a hash of everything that determines them (data fingerprint,
architecture, schedule, seed, request...). Each entry is a payload file plus a small
JSON sidecar holding the payload's SHA-256 and the key's description; both are written
atomically (temporary file, fsync, rename), the sidecar last, so a run killed while
writing leaves no entry that looks complete. A payload whose checksum does not match
is treated as missing: removed and made again, never loaded.

The cache lives in ``$MEGU_CACHE_DIR`` (default ``~/.cache/megu_lib``);
``MEGU_NO_CACHE=1`` or ``Cache(enabled=False)`` bypasses it. An unwritable cache directory
is reported (one line) before the work whose result it would hold; the temporary files of
a writer that was killed are removed by the next writer to the same folder.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import MeguError
from .requests import config_hash


def default_cache_dir() -> Path:
    # an empty MEGU_CACHE_DIR counts as unset (else the cache would land in the working directory)
    return Path(os.environ.get("MEGU_CACHE_DIR") or Path.home() / ".cache" / "megu_lib").expanduser()


def cache_disabled_by_env() -> bool:
    """``MEGU_NO_CACHE`` set to anything but "", "0", "false", "no" or "off" bypasses the cache."""
    return os.environ.get("MEGU_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no", "off")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


def remove_stale_temp_files(folder: Path) -> int:
    """Remove the temporary files that writers killed mid-write left in ``folder``.

    :func:`atomic_write_bytes` names its temporary file ``.<name>.<pid>.<random>.tmp``;
    one whose process is gone can never be renamed into place. Files of live processes
    (a concurrent run) are left alone. Returns how many were removed.
    """
    removed = 0
    try:
        candidates = list(Path(folder).glob(".*.tmp"))
    except OSError:
        return 0
    for f in candidates:
        parts = f.name[1:-len(".tmp")].rsplit(".", 2)
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) != os.getpid() and not _pid_alive(int(parts[1])):
            try:
                f.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def check_writable(folder: Path, what: str, hint: str) -> None:
    """Create ``folder`` if needed and check that a file can be written there, before any work
    whose result would be stored in it; a one-line :class:`MeguError` (with ``hint``) if not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".write-probe.{os.getpid()}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise MeguError(f"{what} {folder} is not writable ({reason}); {hint}") from None


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (a reader sees the old file or the whole new one).

    The temporary file carries the writer's process id, so that a later run can tell the
    leftovers of a killed writer (see :func:`remove_stale_temp_files`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Cache:
    """Get-or-make store of torch-serialisable objects, keyed by a config dict."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.enabled = (not cache_disabled_by_env()) if enabled is None else bool(enabled)
        self._writable = set()

    _HINT = "set MEGU_CACHE_DIR to a writable folder or MEGU_NO_CACHE=1"

    def check_writable(self, kind: str) -> None:
        """Raise a one-line :class:`MeguError` unless entries of ``kind`` can be stored: called
        before the work whose result would be stored, so that no work is lost. Also removes
        the temporary files of writers that were killed."""
        if not self.enabled or kind in self._writable:
            return
        check_writable(self.root / kind, "cache directory", self._HINT)
        remove_stale_temp_files(self.root / kind)
        self._writable.add(kind)

    def _paths(self, kind: str, key: dict):
        h = config_hash(key)
        base = self.root / kind
        return base / f"{h}.pt", base / f"{h}.json"

    def load(self, kind: str, key: dict):
        """The stored object for ``key``, or None when absent, damaged or the cache is off."""
        if not self.enabled:
            return None
        payload_path, meta_path = self._paths(kind, key)
        try:
            meta = json.loads(meta_path.read_text())
            blob = payload_path.read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
            self.discard(kind, key)  # damaged: make it again
            return None
        try:
            return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)
        except Exception:
            self.discard(kind, key)
            return None

    def store(self, kind: str, key: dict, obj, **info) -> None:
        if not self.enabled:
            return
        payload_path, meta_path = self._paths(kind, key)
        buf = io.BytesIO()
        torch.save(obj, buf)
        blob = buf.getvalue()
        try:
            atomic_write_bytes(payload_path, blob)
            meta = dict(key=key, sha256=hashlib.sha256(blob).hexdigest(), bytes=len(blob),
                        created=time.strftime("%Y-%m-%dT%H:%M:%S"), **info)
            atomic_write_bytes(meta_path, json.dumps(meta, indent=1, default=str).encode())
        except OSError as e:  # read-only, a file in the way, disk full...
            reason = e.strerror or type(e).__name__
            raise MeguError(f"cache directory {self.root} is not writable ({reason}); {self._HINT}") from None

    def discard(self, kind: str, key: dict) -> None:
        for p in self._paths(kind, key):
            try:
                p.unlink()
            except OSError:
                pass

    def get_or_make(self, kind: str, key: dict, make: Callable[[], object], **info):
        """Load the object for ``key``; else ``make()`` it, store it and return it."""
        obj = self.load(kind, key)
        if obj is None:
            self.check_writable(kind)  # before the work, not after it
            obj = make()
            self.store(kind, key, obj, **info)
        return obj

    def __repr__(self):
        return f"Cache({str(self.root)!r}, enabled={self.enabled})"


def as_cache(cache) -> Cache:
    """None -> the default cache; False -> a disabled one; a path -> a cache there."""
    if isinstance(cache, Cache):
        return cache
    if cache is None or cache is True:
        return Cache()
    if cache is False:
        return Cache(enabled=False)
    return Cache(cache)
