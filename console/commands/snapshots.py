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
from console.wiring import build_pipeline, choose_target, settings_from_args

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
    from audit.store import Store, StoreUnavailable
    from snapshots.records import SnapshotNotFound
    try:
        store = Store.open(args.store_url)
    except StoreUnavailable as err:
        raise UsageError(f"{err}; check COUNTERSIGN_STORE or store_url in the configuration") from None
    try:
        return ACTIONS[args.action](store, args)
    except SnapshotNotFound as err:
        raise UsageError(str(err)) from None
    finally:
        store.dispose()


# -- list / show ----------------------------------------------------------------------------------
def _list(store, args) -> int:
    from audit.serialize import json_line, snapshot_json
    from snapshots.records import list_snapshots
    found = list_snapshots(store.engine, target=args.target)
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
    from console.redact import redact, secret_patterns
    from console.render import visible
    from snapshots.records import get
    record = get(store.engine, args.id)
    sample, plan, problem = _inspect(record, args)
    record = displayed(record, settings_from_args(args).secret_patterns)
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
        patterns = secret_patterns(settings_from_args(args).secret_patterns)
        print("\nrestore would run (after a second person approves it):")
        print(visible("\n".join("  " + redact(line, patterns) for line in plan["statements"])))
        print(visible("\n".join("  - " + note for note in plan["notes"])))
    return 0


def _inspect(record, args) -> tuple[dict | None, dict | None, str | None]:
    """A sample of the rows and the restore plan, read from the target through the gate (the sample is
    an audited read), and what got in the way (the store's record is shown either way)."""
    from approvals.identity import current_user
    from console.wiring import open_session
    from engines.base import DriverError
    from gate.api import Status
    from gate.errors import GateError
    try:
        settings = settings_from_args(args)
        session = build_pipeline(settings, _target(settings, record), current_user())
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
    from approvals.identity import current_user
    from console.commands import exit_codes
    from console.commands.run import report, tell
    from console.wiring import open_session
    from gate.api import Status
    from gate.errors import GateError
    from snapshots import records
    record = records.get(store.engine, args.id)
    if not record.restorable:
        raise UsageError(f"snapshot {record.id} is {record.status_text}; only a complete snapshot can be restored")
    settings = settings_from_args(args)
    session = build_pipeline(settings, _target(settings, record), current_user())
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


def _target(settings, record):
    target = choose_target(settings, record.target)
    if target.name != record.target:
        raise UsageError(f"snapshot {record.id} belongs to target {record.target!r}, not {target.name!r}")
    return target


# -- prune ------------------------------------------------------------------------------------------
def _prune(store, args) -> int:
    """Drop the rows of snapshots past their target's retention, through the gate: one session per
    target, so each drop is recorded under the person who ran the prune."""
    from config.settings import ConfigError, parse_duration
    from snapshots.records import PRUNED, list_snapshots
    try:
        override = parse_duration(args.older_than, "--older-than") if args.older_than else None
    except ConfigError as err:
        raise UsageError(str(err)) from None
    now, settings = datetime.now(timezone.utc), settings_from_args(args)
    due, failures = {}, 0
    for record in list_snapshots(store.engine):
        if record.status == PRUNED:
            continue
        try:
            target = _target(settings, record)
        except UsageError as err:
            print(f"skipped {record.id}: {err}", file=sys.stderr)
            failures += 1
            continue
        keep = override if override is not None else target.policy.snapshot_retention
        if now - _utc(record.created_at) >= keep:
            due.setdefault(target.name, (target, []))[1].append(record)
    for target, found in due.values():
        failures += _prune_target(settings, target, found, args.dry_run)
    return 1 if failures else 0


def _prune_target(settings, target, found: list, dry_run: bool) -> int:
    from approvals.identity import current_user
    from console.wiring import open_session
    from engines.base import DriverError
    if dry_run:
        for record in found:
            print(f"would prune {record.id} ({record.status}, {record.row_count} rows of {record.table_name}, "
                  f"{_utc(record.created_at):%Y-%m-%d})")
        return 0
    session, failures = build_pipeline(settings, target, current_user()), 0
    try:
        open_session(session, f"prune {len(found)} snapshot(s) past retention")
        for record in found:
            try:
                session.prune_snapshot(record.id)
            except DriverError as err:
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
    from console.redact import redact, secret_patterns
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
