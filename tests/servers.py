"""Real database servers for the tests: scratch databases on PostgreSQL and MariaDB, a MongoDB
wire-protocol server (secantusdb) on a free port, and SQLite files.

COUNTERSIGN_TEST_PG_URL / COUNTERSIGN_TEST_MYSQL_URL / COUNTERSIGN_TEST_MONGO_URL point the tests at
other servers. Where a Docker engine exists and no URL is given, testcontainers supplies them.
A server that cannot be reached is a test ERROR, never a skip.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/mysql"


class ServerUnavailable(RuntimeError):
    pass


def scratch_name(prefix: str) -> str:
    return f"cs_{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def admin_pg_url() -> str:
    url = os.environ.get("COUNTERSIGN_TEST_PG_URL")
    if url:
        return url
    if docker_available():  # pragma: no cover - no Docker engine on our CI machines
        from testcontainers.postgres import PostgresContainer
        container = PostgresContainer("postgres:16").start()
        return container.get_connection_url(driver=None)
    return DEFAULT_PG_URL


def admin_mysql_url() -> str:
    url = os.environ.get("COUNTERSIGN_TEST_MYSQL_URL")
    if url:
        return url
    if docker_available():  # pragma: no cover
        from testcontainers.mysql import MySqlContainer
        container = MySqlContainer("mariadb:11").start()
        return container.get_connection_url().replace("mysql+pymysql://", "mysql://")
    return DEFAULT_MYSQL_URL


def create_pg_database(admin_url: str, name: str) -> str:
    import psycopg
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as err:
        raise ServerUnavailable(
            f"PostgreSQL is not reachable at {admin_url}: {err}. Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or set COUNTERSIGN_TEST_PG_URL.") from err
    return with_database(admin_url, name)


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _mysql_connect(url: str, database: str | None = None):
    import pymysql
    parts = urlsplit(url)
    return pymysql.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                           user=parts.username or "root", password=parts.password or "",
                           database=database, autocommit=True, connect_timeout=5)


def create_mysql_database(admin_url: str, name: str) -> str:
    import pymysql
    try:
        with closing(_mysql_connect(admin_url)) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
    except pymysql.err.OperationalError as err:
        raise ServerUnavailable(
            f"MariaDB/MySQL is not reachable at {admin_url}: {err}. Start it with "
            "`start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd` "
            "or set COUNTERSIGN_TEST_MYSQL_URL.") from err
    return with_database(admin_url, name)


def drop_mysql_database(admin_url: str, name: str) -> None:
    with closing(_mysql_connect(admin_url)) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MongoServer:
    """secantusdb started on a free port, stopped at the end of the test session."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "secantus", "--port", str(self.port), "--storage-path", ":memory:"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        self._wait_ready()

    def _wait_ready(self) -> None:
        import pymongo
        client = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=20000)
        try:
            # server_info blocks until the server answers (pymongo's own server selection wait).
            client.server_info()
        except Exception as err:
            self.stop()
            raise ServerUnavailable(f"secantusdb did not start on port {self.port}: {err}") from err
        finally:
            client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
