"""`countersign snapshots`: list, show, restore and prune the before-images taken by approved writes.

Restore is a write like any other: its statements go through classification, ONE approval by a second
person, their own snapshots and the audit trail, and run in one transaction (all of them or none).
Exit codes: 0 done; 2 unknown snapshot, unusable snapshot or configuration; 3 the restore was rejected,
expired or not approved in time; 4 blocked by policy; 5 the database failed or the guard rolled it back.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from console.errors import UsageError
from console.wiring import console_for

SAMPLE_ROWS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="snapshots, newest first")
    listing.add_argument("--target", help="only this target's snapshots")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="one snapshot: the statement, a sample of its rows, what restore does")
    show.add_argument("id", help="snapshot id or a unique prefix of it")
    show.add_argument("--json", action="store_true")
    restore = actions.add_parser("restore", help="put the rows back (needs a second person's approval)")
    restore.add_argument("id", help="snapshot id or a unique prefix of it")
    restore.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                         help="how long to wait for the approval (default: until the request expires)")
    restore.add_argument("--reason", help="why (recorded in the audit trail)")
    prune = actions.add_parser("prune", help="drop snapshots older than their target's retention policy")
    prune.add_argument("--older-than", metavar="DURATION", help="override the retention, e.g. 7d")
    prune.add_argument("--dry-run", action="store_true", help="only list what would be dropped")


def run(args: argparse.Namespace) -> int:
    from snapshots.records import SnapshotNotFound
    from console.wiring import team_server_url
    store = ServiceRecords(console_for(args).gate) if team_server_url(args) else StoreRecords.open(args.store_url)
    try:
        return ACTIONS[args.action](store, args)
    except SnapshotNotFound as err:
        raise UsageError(str(err)) from None
    finally:
        store.dispose()


class StoreRecords:
    """The snapshot records in this process's store (embedded mode)."""

    def __init__(self, store) -> None:
        self.store = store

    @classmethod
    def open(cls, url: str) -> "StoreRecords":
        from audit.store import Store, StoreUnavailable
        try:
            return cls(Store.open(url))
        except StoreUnavailable as err:
            raise UsageError(f"{err}; check COUNTERSIGN_STORE or store_url in the configuration") from None

    def get(self, id_or_prefix: str):
        from snapshots.records import get
        return get(self.store.engine, id_or_prefix)

    def list(self, target: str | None = None) -> list:
        from snapshots.records import list_snapshots
        return list_snapshots(self.store.engine, target=target)

    def dispose(self) -> None:
        self.store.dispose()


class ServiceRecords:
    """The snapshot records as the team's service reads them from its store (team mode)."""

    def __init__(self, gate) -> None:
        self.gate = gate

    def get(self, id_or_prefix: str):
        return self.gate.snapshot(id_or_prefix)

    def list(self, target: str | None = None) -> list:
        return self.gate.snapshots(target)

    def dispose(self) -> None:
        pass


# -- list / show ----------------------------------------------------------------------------------
def _list(store, args) -> int:
    from audit.serialize import json_line, snapshot_json
    found = store.list(target=args.target)
    if args.json:
        for record in found:
            print(json_line(snapshot_json(record)))
    elif not found:
        print("No snapshots recorded.")
    else:
        print("\n".join(list_lines(found)))
    return 0


def _show(store, args) -> int:
    from audit.serialize import json_document, snapshot_json
    from audit.redact import redact, secret_patterns
    from console.render import visible
    record = store.get(args.id)
    sample, plan, problem = _inspect(record, args)
    record = displayed(record, console_for(args).settings.secret_patterns)
    if args.json:
        print(json_document({**snapshot_json(record), "sample": sample, "restore": plan, "problem": problem}))
        return 0
    print("\n".join(show_lines(record)))
    if problem:
        print(f"\n{problem}")
    if sample is not None:
        print(f"\nfirst {min(SAMPLE_ROWS, record.row_count)} of {record.row_count} rows as they were:")
        print(visible("\n".join(_sample_lines(sample))))
    if plan is not None:
        patterns = secret_patterns(console_for(args).settings.secret_patterns)
        print("\nrestore would run (after a second person approves it):")
        print(visible("\n".join("  " + redact(line, patterns) for line in plan["statements"])))
        print(visible("\n".join("  - " + note for note in plan["notes"])))
    return 0


def _inspect(record, args) -> tuple[dict | None, dict | None, str | None]:
    """A sample of the rows and the restore plan, read from the target through the gate (the sample is
    an audited read), and what got in the way (the store's record is shown either way)."""
    from console.wiring import open_session
    from engines.base import DriverError
    from gate.api import Status
    from gate.errors import GateError
    try:
        console = console_for(args)
        session = console.pipeline(_target(console, record))
        open_session(session, f"show snapshot {record.id}")
    except UsageError as err:
        return None, None, f"cannot reach the target to show rows: {err}"
    try:
        sample = None
        if record.status not in ("discarded", "pruned"):
            read = session.snapshot_sample(record.id, SAMPLE_ROWS)
            if read.status is not Status.OK:
                return None, None, f"cannot read the snapshot on the target: {read.message}"
            sample = {"columns": list(read.result.columns), "rows": [list(r) for r in read.result.rows]}
        plan = session.restore_plan(record.id)
        return sample, {"statements": list(plan.statements), "notes": list(plan.notes)}, None
    except GateError as err:
        return sample, None, f"restore: {str(err).split(': ', 1)[-1]}"
    except DriverError as err:
        return None, None, f"cannot read the snapshot on the target: {err}"
    finally:
        session.close()


def _sample_lines(sample: dict) -> list[str]:
    from engines.base import ResultSet
    from console.render import table
    rows = tuple(tuple(r) for r in sample["rows"])
    return table(ResultSet(tuple(sample["columns"]), rows, len(rows)))


# -- restore ----------------------------------------------------------------------------------------
def _restore(store, args) -> int:
    from console.commands import exit_codes
    from console.commands.run import report, tell
    from console.wiring import open_session
    from gate.api import Status
    from gate.errors import GateError
    record = store.get(args.id)
    if not record.restorable:
        raise UsageError(f"snapshot {record.id} is {record.status_text}; only a complete snapshot can be restored")
    console = console_for(args)
    session = console.pipeline(_target(console, record))
    try:
        open_session(session, args.reason or f"restore snapshot {record.id}")
        try:
            plan = session.restore_plan(record.id)
        except GateError as err:
            raise UsageError(str(err)) from None
        statements = _classified(session, plan.statements)
        print(f"restoring snapshot {record.id} ({record.row_count} rows of {record.table_name} on {record.target}):",
              file=sys.stderr)
        for note in plan.notes:
            print(f"  - {note}", file=sys.stderr)
        outcomes = session.submit_batch(statements, wait=args.wait, notify=tell, restores=record.id,
                                        purpose=f"restore of snapshot {record.id} ({record.row_count} rows "
                                                f"of {record.table_name})")
        for outcome in outcomes:
            report(outcome, "table")
        failed = next((o for o in outcomes if o.status is not Status.OK), None)
        if failed is not None:
            return exit_codes.for_status(failed.status)
        print(f"restored snapshot {record.id}", file=sys.stderr)
        return 0
    finally:
        session.close()


def _classified(session, texts: tuple[str, ...]) -> tuple:
    statements = []
    for text in texts:
        found = session.classify(text)
        if len(found) != 1:   # our own SQL: anything else is a bug, and nothing must run
            raise UsageError(f"internal error: a restore statement split into {len(found)} statements: {text}")
        statements.append(found[0])
    return tuple(statements)


def _target(console, record):
    target = console.target(record.target)
    if target.name != record.target:
        raise UsageError(f"snapshot {record.id} belongs to target {record.target!r}, not {target.name!r}")
    return target


# -- prune ------------------------------------------------------------------------------------------
def _prune(store, args) -> int:
    """Drop the rows of snapshots past their target's retention, through the gate: one session per
    target, so each drop is recorded under the person who ran the prune."""
    from config.settings import ConfigError, parse_duration
    from snapshots.records import PRUNED
    try:
        override = parse_duration(args.older_than, "--older-than") if args.older_than else None
    except ConfigError as err:
        raise UsageError(str(err)) from None
    console = console_for(args)
    if console.team:   # retention is the service's policy, judged on the service's clock
        return _prune_due(console, console.gate.prunable(override), args.dry_run)
    now = datetime.now(timezone.utc)
    due, failures = {}, 0
    for record in store.list():
        if record.status == PRUNED:
            continue
        try:
            target = _target(console, record)
        except UsageError as err:
            print(f"skipped {record.id}: {err}", file=sys.stderr)
            failures += 1
            continue
        keep = override if override is not None else target.policy.snapshot_retention
        if now - _utc(record.created_at) >= keep:
            due.setdefault(target.name, (target, []))[1].append(record)
    for target, found in due.values():
        failures += _prune_target(console, target, found, args.dry_run)
    return 1 if failures else 0


def _prune_due(console, records: list, dry_run: bool) -> int:
    """Team mode: the snapshots the service says are due, one session per target."""
    by_target, failures = {}, 0
    for record in records:
        by_target.setdefault(record.target, []).append(record)
    for name, found in by_target.items():
        failures += _prune_target(console, console.target(name), found, dry_run)
    return 1 if failures else 0


def _prune_target(console, target, found: list, dry_run: bool) -> int:
    from console.wiring import open_session
    from engines.base import DriverError
    from gate.errors import GateError
    if dry_run:
        for record in found:
            print(f"would prune {record.id} ({record.status}, {record.row_count} rows of {record.table_name}, "
                  f"{_utc(record.created_at):%Y-%m-%d})")
        return 0
    session, failures = console.pipeline(target), 0
    try:
        open_session(session, f"prune {len(found)} snapshot(s) past retention")
        for record in found:
            try:
                session.prune_snapshot(record.id)
            except (DriverError, GateError) as err:   # GateError: e.g. the service refused an early prune
                print(f"could not prune {record.id}: {err}", file=sys.stderr)
                failures += 1
                continue
            print(f"pruned {record.id} ({record.row_count} rows of {record.table_name})")
    except UsageError as err:
        print(f"could not prune the snapshots of {target.name}: {err}", file=sys.stderr)
        return len(found)
    finally:
        session.close()
    return failures


ACTIONS = {"list": _list, "show": _show, "restore": _restore, "prune": _prune}


# -- presentation (pure) ------------------------------------------------------------------------------
LIST_COLUMNS = ("id", "created", "target", "table", "op", "rows", "size", "status")


def displayed(record, configured_patterns: tuple[str, ...]):
    """The record as shown: its statement's secret literals redacted (the store keeps the real text)."""
    from dataclasses import replace
    from audit.redact import redact, secret_patterns
    return replace(record, statement=redact(record.statement, secret_patterns(configured_patterns)))


def list_lines(found) -> list[str]:
    """A fixed-width table; table names can be quoted identifiers, so every cell goes through `visible`."""
    from console.render import visible
    rows = [LIST_COLUMNS] + [
        tuple(visible(cell) for cell in (r.id, f"{_utc(r.created_at):%Y-%m-%d %H:%M}", r.target, r.table_name,
                                         r.operation, str(r.row_count), size_text(r.size_bytes), r.status))
        for r in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_COLUMNS))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def show_lines(r) -> list[str]:
    """The record, control and bidirectional characters escaped; the statement keeps its newlines."""
    from console.render import visible
    lines = [f"snapshot    {r.id}", f"status      {r.status_text}",
             f"created     {_utc(r.created_at):%Y-%m-%d %H:%M:%S UTC}", f"target      {r.target}", f"table       {r.table_name} ({r.operation})",
             f"rows        {r.row_count}", f"size        {size_text(r.size_bytes)}",
             f"key         {', '.join(r.key_columns) or '(no primary key)'}", f"location    {r.location}",
             f"approval    {r.approval_id or '-'}", f"session     {r.session_id or '-'}", "statement",
             *("    " + line for line in r.statement.split("\n"))]
    return [visible(line) for line in lines]


def size_text(size: int | None) -> str:
    """
    >>> size_text(None), size_text(512), size_text(3 * 1024 * 1024)
    ('?', '512 B', '3.0 MB')
    """
    if size is None:
        return "?"
    for unit, factor in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("kB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
