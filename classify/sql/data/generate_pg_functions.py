"""Write the PostgreSQL built-in functions and operators a read may use, from the server's own catalog.

    python -m classify.sql.data.generate_pg_functions postgresql://postgres@127.0.0.1/postgres

connects to that server (a fresh cluster is best: nothing but initdb's objects is read anyway) and
writes ``pg<major>_functions.json`` next to this file, which the classifier ships and loads
(classify/sql/builtins.py). What goes in, by pg_proc's own facts:

- a function NAME is safe when it is built in (pg_catalog, created by initdb: oid below 16384, not
  part of an extension) and every overload of it that SQL can call is IMMUTABLE or STABLE, or
  VOLATILE only for a reason listed in HARMLESS_VOLATILE below (it reads a clock, a random source, a
  size or a status);
- minus DENIED below, whatever its volatility: built-ins with effects a READ ONLY transaction does not
  stop, or that run SQL or read server files;
- minus every name with an overload that takes or returns ``cstring``: those are type input/output
  functions, and an input function handed a type's OID (``domain_in('x', 'd'::regtype, -1)``) runs
  that type's checks, which can call user code.

A name is judged by all its overloads because the classifier sees only the name: the server picks the
overload from argument types the text does not show (an untyped literal fits several).
Operators: every built-in operator name whose functions are all IMMUTABLE or STABLE.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# VOLATILE built-ins that still only read: they are VOLATILE because the answer may change between
# calls, not because calling them changes anything.
HARMLESS_VOLATILE: dict[str, str] = {
    "random": "a pseudo-random number from the session's own generator",
    "clock_timestamp": "reads the clock",
    "timeofday": "reads the clock, as text",
    "gen_random_uuid": "a random UUID",
    "currval": "the session's last value of a sequence; reads, advances nothing",
    "lastval": "the session's last sequence value; reads, advances nothing",
    "pg_blocking_pids": "which backends block one: reads the lock table",
    "pg_safe_snapshot_blocking_pids": "which backends block a safe snapshot: reads the lock table",
    "pg_lock_status": "the lock table, as pg_locks shows it",
    "pg_relation_size": "a relation's size on disk",
    "pg_table_size": "a table's size on disk",
    "pg_indexes_size": "a table's indexes' size on disk",
    "pg_total_relation_size": "a relation's size on disk, with indexes and TOAST",
    "pg_database_size": "a database's size on disk",
    "pg_tablespace_size": "a tablespace's size on disk",
    "pg_is_in_recovery": "whether the server is a standby",
    "pg_is_wal_replay_paused": "whether WAL replay is paused",
    "pg_get_wal_replay_pause_state": "whether WAL replay is paused",
    "pg_last_xact_replay_timestamp": "when the standby last replayed a commit",
    "pg_current_wal_lsn": "the current WAL write position",
    "pg_current_wal_insert_lsn": "the current WAL insert position",
    "pg_current_wal_flush_lsn": "the current WAL flush position",
    "pg_last_wal_receive_lsn": "the standby's last received WAL position",
    "pg_last_wal_replay_lsn": "the standby's last replayed WAL position",
    "pg_jit_available": "whether JIT can be used",
    "pg_notification_queue_usage": "how full the NOTIFY queue is",
    "pg_partition_tree": "a partitioned table's partitions",
    "pg_partition_ancestors": "a partition's parents",
    "pg_sequence_last_value": "a sequence's last value; advances nothing",
    "pg_xact_commit_timestamp": "when a transaction committed",
    "pg_xact_commit_timestamp_origin": "when and where a transaction committed",
    "pg_last_committed_xact": "the last committed transaction",
    "pg_xact_status": "whether a transaction committed",
    "txid_status": "whether a transaction committed",
    "pg_get_backend_memory_contexts": "this backend's memory use",
    "pg_get_shmem_allocations": "shared memory use",
    "pg_get_multixact_members": "the members of a multixact",
    "pg_prepared_xact": "the prepared transactions, as pg_prepared_xacts shows them",
    "pg_collation_actual_version": "the operating system's version of a collation",
    "pg_database_collation_actual_version": "the operating system's version of a database's collation",
    "pg_stat_have_stats": "whether statistics exist for an object",
    "pg_get_wal_resource_managers": "the WAL resource managers",
    "current_query": "the text of the running query",
    **{f"pg_stat_get_xact_{what}": "this transaction's own statistics" for what in (
        "blocks_fetched", "blocks_hit", "function_calls", "function_self_time", "function_total_time",
        "numscans", "tuples_deleted", "tuples_fetched", "tuples_hot_updated", "tuples_inserted",
        "tuples_returned", "tuples_updated")},
}

# Never safe, whatever pg_proc says of their volatility. The reason is what a reviewer is shown.
DENIED: dict[str, str] = {
    "set_config": "changes a setting for the rest of the session (search_path, role, limits)",
    "setseed": "changes the session's random seed",
    **{name: "takes an advisory lock, held past the statement and not stopped by READ ONLY" for name in (
        "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
        "pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock",
        "pg_try_advisory_xact_lock_shared")},
    **{name: "releases advisory locks another statement took" for name in (
        "pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all")},
    "pg_terminate_backend": "ends another session",
    "pg_cancel_backend": "cancels another session's query",
    "pg_reload_conf": "makes the server reload its configuration files",
    "pg_rotate_logfile": "makes the server switch log files",
    "pg_rotate_logfile_old": "makes the server switch log files",
    "pg_log_backend_memory_contexts": "makes another backend write to the server log",
    "pg_promote": "promotes a standby to primary",
    "pg_switch_wal": "forces a WAL segment switch",
    "pg_create_restore_point": "writes a restore point into the WAL",
    "pg_backup_start": "starts a base backup",
    "pg_backup_stop": "stops a base backup",
    "pg_wal_replay_pause": "pauses WAL replay on a standby",
    "pg_wal_replay_resume": "resumes WAL replay on a standby",
    **{name: "creates, changes or drops a replication slot" for name in (
        "pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
        "pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot", "pg_drop_replication_slot",
        "pg_replication_slot_advance")},
    **{name: "consumes or reads changes from a replication slot" for name in (
        "pg_logical_slot_get_changes", "pg_logical_slot_get_binary_changes", "pg_logical_slot_peek_changes",
        "pg_logical_slot_peek_binary_changes")},
    "pg_logical_emit_message": "writes a message into the WAL",
    **{name: "changes replication origin state" for name in (
        "pg_replication_origin_advance", "pg_replication_origin_create", "pg_replication_origin_drop",
        "pg_replication_origin_session_reset", "pg_replication_origin_session_setup",
        "pg_replication_origin_xact_reset", "pg_replication_origin_xact_setup")},
    "pg_notify": "sends a notification to other sessions",
    "pg_sleep": "ties up a backend (and its locks) for as long as asked",
    "pg_sleep_for": "ties up a backend (and its locks) for as long as asked",
    "pg_sleep_until": "ties up a backend (and its locks) for as long as asked",
    "nextval": "advances a sequence, which no rollback undoes",
    "setval": "sets a sequence",
    "txid_current": "assigns the transaction an ID (a write to the server's state)",
    "pg_current_xact_id": "assigns the transaction an ID (a write to the server's state)",
    "pg_export_snapshot": "exports a snapshot for other sessions",
    "pg_stat_clear_snapshot": "discards the session's statistics snapshot",
    "pg_stat_force_next_flush": "forces statistics to be flushed",
    **{name: "resets statistics for everyone" for name in (
        "pg_stat_reset", "pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
        "pg_stat_reset_single_function_counters", "pg_stat_reset_slru", "pg_stat_reset_replication_slot",
        "pg_stat_reset_subscription_stats")},
    **{name: "reads a file on the server" for name in (
        "pg_read_file", "pg_read_file_old", "pg_read_binary_file", "pg_stat_file", "pg_hba_file_rules",
        "pg_ident_file_mappings", "pg_show_all_file_settings", "pg_current_logfile")},
    **{name: "lists a directory on the server" for name in (
        "pg_ls_dir", "pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir",
        "pg_ls_logicalmapdir", "pg_ls_logicalsnapdir", "pg_ls_replslotdir")},
    **{name: "reads or writes a large object or a server file" for name in (
        "lo_import", "lo_export", "lo_unlink", "lo_create", "lo_creat", "lo_from_bytea", "lo_put", "lo_open",
        "lo_close", "lo_get", "lo_lseek", "lo_lseek64", "lo_tell", "lo_tell64", "lo_truncate", "lo_truncate64",
        "loread", "lowrite")},
    **{name: "runs the SQL text or the query over a table it is given, which this check never sees" for name in (
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
        "cursor_to_xmlschema", "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
        "schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema", "database_to_xml",
        "database_to_xmlschema", "database_to_xml_and_xmlschema", "ts_stat", "ts_rewrite")},
    **{name: "validates a function by loading its library, whose initialisation code runs" for name in (
        "fmgr_c_validator", "fmgr_internal_validator", "fmgr_sql_validator", "plpgsql_validator")},
    "pg_import_system_collations": "creates collations",
    "pg_nextoid": "assigns an OID",
    "pg_extension_config_dump": "changes an extension's configuration",
    "brin_summarize_new_values": "writes BRIN summaries",
    "brin_summarize_range": "writes BRIN summaries",
    "brin_desummarize_range": "removes BRIN summaries",
    "gin_clean_pending_list": "rewrites a GIN index's pending list",
    # Extensions whose functions must never pass, should one ever be installed into pg_catalog.
    **{name: "connects to another server and runs SQL there" for name in (
        "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query", "dblink_open",
        "dblink_fetch", "dblink_close", "dblink_get_result")},
    **{name: "writes, renames or removes a server file" for name in (
        "pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls")},
}

# Pseudo-types no SQL value has: an overload taking or returning one cannot be called from a query.
UNCALLABLE = ("internal", "trigger", "event_trigger", "language_handler", "fdw_handler", "index_am_handler",
              "tsm_handler", "table_am_handler")

FUNCTIONS_SQL = """
SELECT p.proname, p.provolatile,
       'cstring'::regtype = ANY (p.proargtypes::oid[]) OR p.prorettype = 'cstring'::regtype AS type_io
FROM pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace
  AND p.oid < 16384                                    -- created by initdb (FirstNormalObjectId)
  AND p.prokind IN ('f', 'a', 'w')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.deptype = 'e')                 -- not an extension's (plpgsql is one)
  AND p.prorettype::regtype::text <> ALL (%(uncallable)s)
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) a WHERE a::regtype::text = ANY (%(uncallable)s))
"""

OPERATORS_SQL = """
SELECT o.oprname, bool_and(f.provolatile IN ('i', 's'))
FROM pg_operator o JOIN pg_proc f ON f.oid = o.oprcode
WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oid < 16384
GROUP BY o.oprname
"""


def safe_names(rows: list[tuple[str, str, bool]]) -> list[str]:
    """The names every callable overload of which is safe (see the module docstring).

    >>> safe_names([("lower", "i", False), ("now", "s", False), ("random", "v", False),
    ...             ("pg_sleep", "v", False), ("nextval", "v", False), ("domain_in", "s", True),
    ...             ("txid_current", "s", False), ("f", "i", False), ("f", "v", False)])
    ['lower', 'now', 'random']
    """
    verdicts: dict[str, bool] = {}
    for name, volatility, type_io in rows:
        safe = not type_io and (volatility in ("i", "s") or name in HARMLESS_VOLATILE) and name not in DENIED
        verdicts[name] = verdicts.get(name, True) and safe
    return sorted(name for name, safe in verdicts.items() if safe)


def generate(url: str) -> dict:
    import psycopg
    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT current_setting('server_version_num')::int, version()").fetchone()
        functions = conn.execute(FUNCTIONS_SQL, {"uncallable": list(UNCALLABLE)}).fetchall()
        operators = conn.execute(OPERATORS_SQL).fetchall()
    return {
        "server_version_num": version[0],
        "server": version[1].split(" on ")[0],
        "source": "pg_proc and pg_operator of pg_catalog; see classify/sql/data/generate_pg_functions.py",
        "functions": safe_names(functions),
        "operators": sorted(name for name, safe in operators if safe),
        "denied": dict(sorted(DENIED.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a PostgreSQL connection URL (any database of the server)")
    parser.add_argument("--output", type=Path, help="where to write (default: pg<major>_functions.json here)")
    args = parser.parse_args(argv)
    data = generate(args.url)
    output = args.output or HERE / f"pg{data['server_version_num'] // 10000}_functions.json"
    output.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{output}: {len(data['functions'])} functions, {len(data['operators'])} operators "
          f"from {data['server']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
