"""Snapshots on REAL PostgreSQL, MariaDB and SQLite: plan -> prepare -> (capture, write, capture_after)
in one repeatable-read transaction -> the snapshot holds exactly the changed rows -> the restore
statements put the table back exactly as it was."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine

from audit.schema import metadata
from engines import open_driver
from snapshots import capture, records
from snapshots.plan import SnapshotUnsupported, plan_snapshot, quote_table, table_infos
from snapshots.restore import RestoreImpossible, restore_statements

ITEMS = [(1, "apple", 10), (2, "pear", 20), (3, "plum", 30), (4, "fig", 40), (5, "kiwi", 50), (6, "lime", 60)]
TAGS = [(2, "red"), (4, "keep"), (6, "drop"), (9, "new")]
NOKEY = [(1, "a"), (2, "b"), (2, "b"), (3, "c")]


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def driver(request):
    """A driver on a scratch database of each server (tests narrow the list with indirect=True)."""
    url = request.getfixturevalue({"postgres": "pg_url", "mysql": "mysql_url", "sqlite": "sqlite_url"}[request.param])
    drv = open_driver(url)
    with drv.transaction(read_only=False) as tx:
        tx.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50), qty INTEGER NOT NULL)")
        tx.execute("CREATE TABLE tags (item_id INTEGER PRIMARY KEY, tag VARCHAR(20))")
        tx.execute("CREATE TABLE nokey (x INTEGER, y VARCHAR(10))")
    with drv.transaction(read_only=False) as tx:
        tx.execute("INSERT INTO items VALUES " + ", ".join(f"({i}, '{n}', {q})" for i, n, q in ITEMS))
        tx.execute("INSERT INTO tags VALUES " + ", ".join(f"({i}, '{t}')" for i, t in TAGS))
        tx.execute("INSERT INTO nokey VALUES " + ", ".join(f"({x}, '{y}')" for x, y in NOKEY))
    made: list[str] = []
    drv.made_snapshots = made
    yield drv
    for location in made:        # MariaDB's snapshot database outlives the scratch database
        capture.discard(drv, location)
    drv.close()


@pytest.fixture
def store(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@dataclass(frozen=True)
class Written:
    plan: object
    captured: capture.Captured
    record: records.SnapshotRecord


def rows(driver, table: str) -> list[tuple]:
    with driver.transaction(read_only=True) as tx:
        result = tx.execute(f"SELECT * FROM {table}")
    return sorted((tuple(r) for r in result.rows), key=repr)


def snap_rows(driver, location: str) -> list[tuple]:
    return rows(driver, quote_table(location, driver.dialect))


def write(driver, store, sql: str) -> Written:
    """The guarded-write sequence, without the pipeline around it."""
    plan = plan_snapshot(sql, driver.dialect, table_infos(driver.catalog()))
    snapshot_id = uuid.uuid4().hex
    records.record_pending(store, snapshot_id=snapshot_id, target="t", plan=plan, statement=sql,
                           approval_id=None, session_id=None, now=datetime.now(timezone.utc))
    location = capture.prepare_outside_transaction(driver, plan, snapshot_id)
    driver.made_snapshots.append(location)
    with driver.transaction(read_only=False, isolation="repeatable read") as tx:
        captured = capture.capture(tx, plan, snapshot_id)
        tx.execute(sql)
        captured = capture.capture_after(tx, plan, snapshot_id, captured)
    records.mark_complete(store, snapshot_id, row_count=captured.row_count, size_bytes=captured.size_bytes,
                          location=captured.location)
    return Written(plan, captured, records.get(store, snapshot_id[:12]))


def restore(driver, written: Written, *, replannable: bool = True) -> None:
    catalog = driver.catalog()
    plan = restore_statements(written.record, driver.dialect, catalog)
    assert plan.notes
    for statement in plan.statements:
        if replannable:   # restore is a write like any other: it can be snapshotted too
            plan_snapshot(statement, driver.dialect, table_infos(catalog))
    with driver.transaction(read_only=False, isolation="repeatable read") as tx:
        for statement in plan.statements:
            tx.execute(statement)


def item(*ids: int) -> list[tuple]:
    return sorted((r for r in ITEMS if r[0] in ids), key=repr)


def join_update(dialect: str) -> str:
    if dialect == "mysql":
        return ("UPDATE items JOIN tags ON tags.item_id = items.id SET items.name = tags.tag, "
                "items.qty = items.qty + 1 WHERE tags.tag <> 'keep'")
    return ("UPDATE items SET name = tags.tag, qty = items.qty + 1 FROM tags "
            "WHERE tags.item_id = items.id AND tags.tag <> 'keep'")


def upsert(dialect: str) -> str:
    values = "INSERT INTO items (id, name, qty) VALUES (1, 'up', 1), (3, 'up', 3), (50, 'new', 5), (51, 'new', 6)"
    if dialect == "mysql":
        return values + " ON DUPLICATE KEY UPDATE name = VALUES(name), qty = VALUES(qty)"
    return values + " ON CONFLICT (id) DO UPDATE SET name = excluded.name, qty = excluded.qty"


@pytest.mark.parametrize("form, expected_ids", [
    ("UPDATE items SET qty = qty + 100, name = 'changed' WHERE qty >= 30", (3, 4, 5, 6)),
    ("DELETE FROM items WHERE id IN (2, 4, 6)", (2, 4, 6)),
    ("join update", (2, 6)),
])
def test_update_and_delete_snapshot_exactly_the_changed_rows_and_restore(driver, store, form, expected_ids):
    sql = join_update(driver.dialect) if form == "join update" else form
    written = write(driver, store, sql)
    assert snap_rows(driver, written.captured.location) == item(*expected_ids)
    assert written.captured.row_count == written.record.row_count == len(expected_ids)
    assert written.record.size_bytes > 0          # sized by the server (estimates on InnoDB)
    assert rows(driver, "items") != sorted(ITEMS, key=repr)
    restore(driver, written)
    assert rows(driver, "items") == sorted(ITEMS, key=repr)


@pytest.mark.parametrize("driver", ["postgres", "mysql"], indirect=True)   # SQLite has no multi-table DELETE
def test_multi_table_delete(driver, store):
    sql = ("DELETE items FROM items JOIN tags ON tags.item_id = items.id WHERE tags.tag <> 'keep'"
           if driver.dialect == "mysql" else
           "DELETE FROM items USING tags WHERE tags.item_id = items.id AND tags.tag <> 'keep'")
    written = write(driver, store, sql)
    assert snap_rows(driver, written.captured.location) == item(2, 6)
    restore(driver, written)
    assert rows(driver, "items") == sorted(ITEMS, key=repr)


def test_insert_select_records_the_inserted_keys_and_restore_removes_them(driver, store):
    written = write(driver, store, "INSERT INTO items (id, name, qty) SELECT item_id + 100, tag, 0 FROM tags")
    assert snap_rows(driver, written.captured.location) == []
    keys = snap_rows(driver, capture.keys_location(written.captured.location))
    assert keys == [(102, 1), (104, 1), (106, 1), (109, 1)]
    assert written.record.row_count == 4
    restore(driver, written)
    assert rows(driver, "items") == sorted(ITEMS, key=repr)


@pytest.mark.parametrize("driver, form", [("postgres", "upsert"), ("mysql", "upsert"), ("sqlite", "upsert"),
                                          ("mysql", "replace"), ("sqlite", "replace")], indirect=["driver"])
def test_upsert_snapshots_overwritten_rows_and_inserted_keys(driver, store, form):
    if form == "replace":
        verb = "REPLACE" if driver.dialect == "mysql" else "INSERT OR REPLACE"
        sql = f"{verb} INTO items (id, name, qty) VALUES (1, 'up', 1), (3, 'up', 3), (50, 'new', 5), (51, 'new', 6)"
    else:
        sql = upsert(driver.dialect)
    written = write(driver, store, sql)
    assert snap_rows(driver, written.captured.location) == item(1, 3)
    assert snap_rows(driver, capture.keys_location(written.captured.location)) == [(50, 1), (51, 1)]
    assert written.record.row_count == 4
    restore(driver, written)
    assert rows(driver, "items") == sorted(ITEMS, key=repr)


@pytest.mark.parametrize("driver", ["postgres", "mysql"], indirect=True)   # SQLite has no TRUNCATE
def test_truncate_restores_every_row(driver, store):
    written = write(driver, store, "TRUNCATE TABLE items")
    assert written.plan.count_is_table_size
    assert snap_rows(driver, written.captured.location) == sorted(ITEMS, key=repr)
    assert rows(driver, "items") == []
    restore(driver, written)
    assert rows(driver, "items") == sorted(ITEMS, key=repr)


def test_drop_table_is_recreated_with_its_rows(driver, store):
    written = write(driver, store, "DROP TABLE items")
    assert snap_rows(driver, written.captured.location) == sorted(ITEMS, key=repr)
    assert driver.catalog().table("items") is None
    notes = restore_statements(written.record, driver.dialect, driver.catalog()).notes
    assert "NOT restored" in notes[0]
    restore(driver, written, replannable=False)
    assert rows(driver, "items") == sorted(ITEMS, key=repr)


@pytest.mark.parametrize("driver", ["postgres"], indirect=True)            # MERGE: PostgreSQL only
def test_merge_on_postgres_restores_the_whole_table(driver, store):
    written = write(driver, store, "MERGE INTO items i USING tags t ON i.id = t.item_id "
                                   "WHEN MATCHED AND t.tag = 'drop' THEN DELETE "
                                   "WHEN MATCHED THEN UPDATE SET name = t.tag "
                                   "WHEN NOT MATCHED THEN INSERT (id, name, qty) VALUES (t.item_id, t.tag, 0)")
    assert snap_rows(driver, written.captured.location) == sorted(ITEMS, key=repr)
    assert (9, "new", 0) in rows(driver, "items")
    restore(driver, written)
    assert rows(driver, "items") == sorted(ITEMS, key=repr)


def test_table_without_primary_key(driver, store):
    deleted = write(driver, store, "DELETE FROM nokey WHERE x = 2")
    assert snap_rows(driver, deleted.captured.location) == [(2, "b"), (2, "b")]
    plan = restore_statements(deleted.record, driver.dialect, driver.catalog())
    assert any("no primary key" in note for note in plan.notes)
    assert any("cannot itself be snapshotted" in note for note in plan.notes)
    with pytest.raises(SnapshotUnsupported, match="no primary key"):
        plan_snapshot(plan.statements[0], driver.dialect, table_infos(driver.catalog()))
    restore(driver, deleted, replannable=False)
    assert rows(driver, "nokey") == sorted(NOKEY, key=repr)

    updated = write(driver, store, "UPDATE nokey SET y = 'z' WHERE x = 3")
    assert snap_rows(driver, updated.captured.location) == [(3, "c")]
    with pytest.raises(RestoreImpossible, match="no primary key"):
        restore_statements(updated.record, driver.dialect, driver.catalog())
    with pytest.raises(SnapshotUnsupported, match="no primary key"):
        plan_snapshot("INSERT INTO nokey VALUES (9, 'n')", driver.dialect, table_infos(driver.catalog()))


def test_count_sql_counts_the_rows_the_write_changes(driver):
    plan = plan_snapshot(join_update(driver.dialect), driver.dialect, table_infos(driver.catalog()))
    with driver.transaction(read_only=True) as tx:
        assert tx.execute(plan.count_sql).rows[0][0] == 2


class Boom(Exception):
    pass


def test_a_rolled_back_write_leaves_no_snapshot(driver, store):
    sql = "DELETE FROM items WHERE qty > 25"
    plan = plan_snapshot(sql, driver.dialect, table_infos(driver.catalog()))
    snapshot_id = uuid.uuid4().hex
    records.record_pending(store, snapshot_id=snapshot_id, target="t", plan=plan, statement=sql,
                           approval_id=None, session_id=None, now=datetime.now(timezone.utc))
    location = capture.prepare_outside_transaction(driver, plan, snapshot_id)
    driver.made_snapshots.append(location)
    with pytest.raises(Boom):
        with driver.transaction(read_only=False, isolation="repeatable read") as tx:
            assert capture.capture(tx, plan, snapshot_id).row_count == 4
            tx.execute(sql)
            raise Boom()
    exists = location.split(".")[-1] in _table_names(driver)
    # MySQL created the (empty) table before the transaction; PostgreSQL and SQLite rolled it back.
    assert exists is (driver.dialect == "mysql")
    capture.discard(driver, location)
    records.mark_discarded(store, snapshot_id)
    assert location.split(".")[-1] not in _table_names(driver)
    assert rows(driver, "items") == sorted(ITEMS, key=repr)
    record = records.get(store, snapshot_id)
    assert (record.status, record.restorable) == ("discarded", False)
    with pytest.raises(RestoreImpossible, match="discarded"):
        restore_statements(record, driver.dialect, driver.catalog())


def _table_names(driver) -> set[str]:
    sql = {"postgres": "SELECT table_name FROM information_schema.tables WHERE table_schema = 'countersign_snapshots'",
           "mysql": "SELECT table_name FROM information_schema.tables WHERE table_schema = 'countersign_snapshots'",
           "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'"}[driver.dialect]
    with driver.transaction(read_only=True) as tx:
        return {r[0] for r in tx.execute(sql).rows}


def test_records_track_the_life_of_a_snapshot(store_url):
    from audit.store import Store
    store = Store.open(store_url)
    engine = store.engine
    try:
        plan = plan_snapshot("DELETE FROM items WHERE qty > 1", "postgres",
                             {"items": table_infos(_items_catalog())["items"]})
        now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
        ids = ["ab12" + uuid.uuid4().hex[4:], "ab34" + uuid.uuid4().hex[4:], uuid.uuid4().hex]
        for n, snapshot_id in enumerate(ids):
            records.record_pending(engine, snapshot_id=snapshot_id, target="prod" if n < 2 else "staging",
                                   plan=plan, statement="DELETE FROM items WHERE qty > 1", approval_id="ap1",
                                   session_id="s1", now=now)
        # The write of ids[0] committed; ids[1] rolled back; ids[2] is still pending (its writer died: reconcile settles it).
        records.mark_complete(engine, ids[0], row_count=4, size_bytes=8192, location="countersign_snapshots.s_x")
        records.mark_discarded(engine, ids[1])
        records.mark_discarded(engine, ids[1])                 # idempotent while a failure unwinds
        with pytest.raises(records.SnapshotNotFound):
            records.mark_complete(engine, ids[1], row_count=1, size_bytes=None, location="x")

        first = records.get(engine, ids[0][:8])
        assert (first.status_text, first.row_count, first.size_bytes, first.table_name, first.operation,
                first.key_columns, first.approval_id, first.restorable) == (
            "complete", 4, 8192, "public.items", "delete", ("id",), "ap1", True)
        assert records.get(engine, ids[1]).status_text == "discarded (the write rolled back)"
        assert records.get(engine, ids[2]).status_text == records._STATUS_TEXT["pending"]
        assert records.get(engine, ids[2]).location == capture.snapshot_location("postgres", ids[2])
        with pytest.raises(records.SnapshotNotFound, match="several"):
            records.get(engine, "ab")
        with pytest.raises(records.SnapshotNotFound, match="no snapshot"):
            records.get(engine, "ffff_")

        assert {r.id for r in records.list_snapshots(engine, target="prod")} == set(ids[:2])
        assert len(records.list_snapshots(engine)) == 3
        records.mark_restored(engine, ids[0])
        assert records.get(engine, ids[0]).status == "restored"
        with pytest.raises(records.SnapshotNotFound):
            records.mark_restored(engine, ids[0])              # restored once only
    finally:
        store.dispose()


def _items_catalog():
    from engines.base import Catalog, Column, Table
    return Catalog((Table("public", "items", (Column("id", "int"), Column("name", "text"), Column("qty", "int")),
                          ("id",)),))
