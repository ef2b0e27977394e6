"""A throwaway PostgreSQL cluster that a test starts, stops and removes itself.

For tests that take the database away (outages, restarts): they must never touch the
machine's shared server. The cluster lives in a temporary directory, listens on a free
loopback port only (its unix socket sits in that directory too), trusts local
connections (``initdb -A trust``) and keeps ``fsync`` on, so a crash of the server
loses nothing that was committed.

``initdb`` and ``pg_ctl`` refuse to run as root: when the tests run as root, every
command runs as the ``postgres`` user (``runuser -u postgres --``) and the directory is
handed to that user; otherwise they run as the current user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

CLUSTER_USER = "postgres"
StopMode = Literal["smart", "fast", "immediate"]


def _version_key(bin_dir: str) -> tuple[int, ...]:
    version = Path(bin_dir).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb and pg_ctl, else the
    directory of ``initdb`` on PATH (or None)."""
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.access(os.path.join(d, "initdb"), os.X_OK)
        and os.access(os.path.join(d, "pg_ctl"), os.X_OK)
    ]
    if candidates:
        return Path(max(candidates, key=_version_key))
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _as_root() -> bool:
    return os.geteuid() == 0


def cluster_problem() -> str | None:
    """Why a throwaway cluster cannot be made here, or None when it can."""
    if find_bin_dir() is None:
        return "initdb/pg_ctl not found (no /usr/lib/postgresql/*/bin, none on PATH)"
    if _as_root():
        try:
            pwd.getpwnam(CLUSTER_USER)
        except KeyError:
            return f"running as root and there is no {CLUSTER_USER!r} user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgCluster:
    """``initdb`` on construction; then ``start()``, ``stop(mode)``, ``url``, ``cleanup()``."""

    def __init__(self, port: int | None = None) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(cluster_problem())
        self.bin_dir = bin_dir
        self.port = port or _free_port()
        # Not under pytest's tmp_path: /tmp/pytest-of-root is root's alone (0700), and
        # the postgres user must be able to reach the directory.
        self.root = Path(tempfile.mkdtemp(prefix="trailkeep-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if _as_root():
            user = pwd.getpwnam(CLUSTER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)
        self.running = False
        try:
            self._init()
        except BaseException:
            self.cleanup()
            raise

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if _as_root():
            command = ["runuser", "-u", CLUSTER_USER, "--", *command]
        proc = subprocess.run(
            command,
            cwd=self.root,  # the postgres user may not be allowed into the caller's cwd
            capture_output=True,
            text=True,
            timeout=timeout,
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        )
        if proc.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()}\n{tail}"
            )
        return proc

    def _init(self) -> None:
        # --no-sync only skips initdb's own final flush of the fresh cluster (it is a
        # throwaway); the running server keeps fsync on, set below.
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": "50",
            "shared_buffers": "'32MB'",
            "logging_collector": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# trailkeep test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections (after crash recovery)."""
        self._run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(int(timeout)),
            timeout=timeout + 10,
        )  # fmt: skip
        self.running = True

    def stop(self, mode: StopMode = "fast", timeout: float = 60.0) -> None:
        """``fast``: abort sessions, checkpoint, exit. ``immediate``: every process quits
        at once without a checkpoint, as in a crash; the next start recovers from WAL."""
        self._run(
            "pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)),
            timeout=timeout + 10,
        )  # fmt: skip
        self.running = False

    def cleanup(self) -> None:
        """Stop the server if it runs, and remove the directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate", timeout=30)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
