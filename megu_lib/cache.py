"""A content-addressed cache for trained models and other tensors.

Entries are keyed by a hash of everything that determines them (data fingerprint,
architecture, schedule, seed, request...). Each entry is a payload file plus a small
JSON sidecar holding the payload's SHA-256 and the key's description; both are written
atomically (temporary file, fsync, rename), the sidecar last, so a run killed while
writing leaves no entry that looks complete. A payload whose checksum does not match
is treated as missing: removed and made again, never loaded.

The cache lives in ``$MEGU_CACHE_DIR`` (default ``~/.cache/megu_lib``);
``MEGU_NO_CACHE=1`` or ``Cache(enabled=False)`` bypasses it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from .errors import MeguError
from .requests import config_hash


def default_cache_dir() -> Path:
    return Path(os.environ.get("MEGU_CACHE_DIR", Path.home() / ".cache" / "megu_lib")).expanduser()


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (a reader sees the old file or the whole new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
        self.enabled = (os.environ.get("MEGU_NO_CACHE", "0") in ("0", "")) if enabled is None else bool(enabled)

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
        except PermissionError:
            raise MeguError(f"cache directory {self.root} is not writable; set MEGU_CACHE_DIR to a "
                            "writable folder or MEGU_NO_CACHE=1") from None

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
