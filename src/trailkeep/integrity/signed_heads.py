"""What this signer has signed, remembered outside the database (beside the signing key).

The database keeps every checkpoint, so a consistent older backup restored over a newer
database carries its own older checkpoints: checked against those alone, the older tree
looks fine, and the signer would sign a new checkpoint over it, forking the log for
every auditor who saw the newer one. So the signer also remembers, per tenant, the
largest tree it ever signed (size and root) in a small file that a database restore
does not touch, and refuses to sign a tree that is smaller than it, or that does not
extend it (integrity/signing.py). Resolving such a refusal is an operator's decision
(docs/integrity.md, "Restoring a backup").

The file is JSON, rewritten atomically (temporary file, fsync, rename) under an
exclusive lock, merging what other processes sharing the data directory wrote: each
tenant's entry only ever grows.
"""

from __future__ import annotations

import base64
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

Head = tuple[int, bytes]  # (tree size, root hash)
SIGNED_HEADS_FILE = "signed-heads.json"


class SignedHeads:
    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: remember nothing (a store without a data directory)
        self._cache: tuple[int, dict[str, Head]] | None = None  # (mtime_ns, heads)

    def _read(self) -> dict[str, Head]:
        assert self.path is not None
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise RuntimeError(f"{self.path} cannot be read ({exc}): fix or remove it") from None
        return {t: (int(v["size"]), base64.b64decode(v["root"])) for t, v in raw.items()}

    def get(self, tenant_id: str) -> Head | None:
        """The largest head signed for the tenant (read again whenever the file changed:
        a signing round asks for every tenant)."""
        if self.path is None:
            return None
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if self._cache is None or self._cache[0] != mtime:
            self._cache = (mtime, self._read())
        return self._cache[1].get(tenant_id)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def record(self, tenant_id: str, size: int, root: bytes) -> None:
        """Remember a signed head (kept only if larger than the one remembered)."""
        if self.path is None:
            return
        with self._locked():
            heads = self._read()
            known = heads.get(tenant_id)
            if known is not None and known[0] >= size:
                return
            heads[tenant_id] = (size, root)
            data = orjson.dumps(
                {
                    t: {"size": s, "root": base64.b64encode(r).decode()}
                    for t, (s, r) in heads.items()
                },
                option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2,
            )
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
