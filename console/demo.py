"""The embedded demo: a local SQLite database with sample sites and deploys, and local approvals.

A newcomer runs `countersign shell` with nothing configured and sees the whole flow: reads run at
once, a multi-row UPDATE waits for a second person, a snapshot is taken, everything is audited.
"""
from __future__ import annotations

import os
import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from config.settings import Policy, Target

DEMO_TARGET = "demo"

SCHEMA = """
CREATE TABLE sites (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE deploys (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites(id),
    commit_sha TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT,
    deployed_at TEXT NOT NULL
);
CREATE INDEX deploys_site ON deploys(site_id);
"""

REGIONS = ("eu-west", "us-east", "us-west", "ap-south")
PLANS = ("free", "pro", "business")
STATUSES = ("ready", "ready", "ready", "ready", "error", "building")
WORDS = ("acme", "blue", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper",
         "kite", "lumen", "maple", "nova", "onyx", "pine", "quartz", "river", "sage", "tide")


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "countersign"


def demo_database(path: Path | None = None) -> Path:
    """Create and seed the demo database once; later calls reuse it as the user left it."""
    path = path or state_dir() / "demo.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as conn:
        conn.executescript(SCHEMA)
        seed(conn)
    tmp.replace(path)  # atomic: a half-seeded demo database is never left behind
    return path


def seed(conn: sqlite3.Connection, sites: int = 40, deploys_per_site: int = 25) -> None:
    rng = random.Random(42)  # the same demo data every time
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for site_id in range(1, sites + 1):
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{site_id}"
        conn.execute("INSERT INTO sites VALUES (?, ?, ?, ?, ?)",
                     (site_id, name, rng.choice(REGIONS), rng.choice(PLANS),
                      (start - timedelta(days=rng.randint(30, 900))).isoformat()))
    deploy_id = 0
    for site_id in range(1, sites + 1):
        for n in range(deploys_per_site):
            deploy_id += 1
            conn.execute("INSERT INTO deploys VALUES (?, ?, ?, ?, ?, ?)",
                         (deploy_id, site_id, f"{rng.getrandbits(40):010x}", rng.choice(STATUSES),
                          f'{{"framework": "{rng.choice(("next", "astro", "hugo", "remix"))}", "build": {n}}}',
                          (start + timedelta(hours=deploy_id * 3)).isoformat()))


def demo_target(path: Path | None = None) -> Target:
    url = f"sqlite:///{demo_database(path)}"
    return Target(name=DEMO_TARGET, url=url, dialect="sqlite", environment="demo",
                  policy=Policy(name="demo", max_write_rows=10_000))
