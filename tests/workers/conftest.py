"""A real PostgreSQL server for the worker tests, and a tiny study config.

The server is Debian's ``postgresql`` package (``/usr/lib/postgresql/<v>/bin``): initdb into
a temp dir, listen on a free loopback port with password (scram) auth, create a database,
yield its SQLAlchemy URL, stop it afterwards. PostgreSQL refuses to run as root, so as root
the server runs as the ``postgres`` system user (the package creates it) or ``nobody``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.configs import TINY_VIT, tiny_toml

PG_USER, PG_PASSWORD, PG_DB = "econas", "s3cret-Pw-42", "econas_test"


def write_config(directory: Path, name: str = "workers", extra: str = "") -> Path:
    """``directory / f"{name}.toml"``: four trials of a tiny CNN or ViT, no reuse."""
    return tiny_toml(
        directory,
        name,
        extra=extra,
        study={"seed": 3},
        search={"spaces": ["cnn", "vit"], "vit": TINY_VIT},
        efficiency={"reuse": False},
    )


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> tuple[list[str], int | None, int | None]:
    """Command prefix and uid/gid to run the server with (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], pw.pw_uid, pw.pw_gid
    pytest.skip("running as root and no unprivileged user to run PostgreSQL as")


@pytest.fixture
def tiny_config():  # noqa: ANN201 - the write_config factory
    return write_config


@pytest.fixture
def pg_password() -> str:
    return PG_PASSWORD


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://econas:<pw>@127.0.0.1:<port>/econas_test`` of a fresh server."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    prefix, uid, gid = _run_as()
    base = Path(tempfile.mkdtemp(prefix="econas-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    pwfile = base / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if uid is not None:
        os.chmod(base, 0o755)
        for p in (base, sock, pwfile):
            os.chown(p, uid, gid)
    subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}"]
        + ["--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c max_connections=60"
    log = base / "server.log"
    subprocess.run(
        [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w"]
        + ["start"],
        check=True,
        capture_output=True,
    )
    try:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(
                    host="127.0.0.1",
                    port=port,
                    user=PG_USER,
                    password=PG_PASSWORD,
                    dbname="postgres",
                    autocommit=True,
                )
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with conn:
            conn.execute(f"CREATE DATABASE {PG_DB}")
        yield f"postgresql+psycopg://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/{PG_DB}"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
