"""What may run without approval, per dialect: a whitelist, so anything new or unknown needs approval.

Functions are judged by the name AS WRITTEN (PostgreSQL: as its own parser reads it; MySQL and SQLite:
the name token before `(`), never by the node sqlglot makes of it: sqlglot knows ~670 function names
from many dialects (`read_csv`, `to_file`, `predict`, ...), and on MariaDB/MySQL a name that is not a
native function resolves to a stored function in the current database, on PostgreSQL to whatever
function of that name the search path finds.

So each dialect lists only functions that are built into that server, checked there, and free of side
effects:
- postgres: names present in pg_catalog (PostgreSQL 15), IMMUTABLE or STABLE, or VOLATILE only because
  they read a clock, a random source or a file size (clock_timestamp, random, pg_relation_size, ...);
- mysql: native in both MySQL 8 and MariaDB 10.11 (on MariaDB `SELECT name()` does not fall through to
  "FUNCTION db.name does not exist"); names native in only one of them are left out;
- sqlite: listed by `PRAGMA function_list` as built in (plus the JSON and PRAGMA table-valued functions).
FINDINGS.md lists what a READ ONLY transaction does not stop (pg_terminate_backend, dblink_exec,
advisory locks, lo_export, set_config, ...): none of those may ever appear here.
"""
from __future__ import annotations

# Never safe, whatever node sqlglot makes of them (checked by lower-case name first).
UNSAFE_FUNCTIONS = frozenset({
    # PostgreSQL: side effects a read-only transaction does not stop, or writes
    "nextval", "setval", "setseed", "pg_terminate_backend", "pg_cancel_backend", "dblink",
    "dblink_exec", "dblink_connect", "dblink_send_query", "lo_export", "lo_import", "lo_unlink",
    "lo_create", "lo_from_bytea", "lo_put", "pg_advisory_lock", "pg_advisory_lock_shared",
    "pg_try_advisory_lock", "pg_advisory_xact_lock", "pg_try_advisory_xact_lock", "pg_reload_conf",
    "pg_rotate_logfile", "pg_stat_reset", "pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
    "pg_switch_wal", "pg_create_restore_point", "set_config", "pg_notify", "pg_sleep", "pg_sleep_for",
    "pg_sleep_until", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file",
    "pg_logical_emit_message", "pg_create_logical_replication_slot", "pg_drop_replication_slot",
    "pg_promote", "pg_backup_start", "pg_backup_stop", "txid_current", "pg_current_xact_id",
    "query_to_xml", "query_to_xml_and_xmlschema", "cursor_to_xml", "table_to_xml",
    # MySQL / MariaDB
    "sleep", "benchmark", "get_lock", "release_lock", "release_all_locks", "load_file",
    "master_pos_wait", "source_pos_wait", "master_gtid_wait", "wait_for_executed_gtid_set",
    "last_insert_id", "sys_exec", "sys_eval",
    # SQLite (load_extension/fts3_tokenizer built in; the rest from the sqlite3 shell's extensions)
    "load_extension", "writefile", "readfile", "edit", "fts3_tokenizer", "sqlite_log", "optimize",
})

# Built-in pg_catalog functions (checked against pg_proc on PostgreSQL 15).
_POSTGRES = {
    "abs", "acos", "age", "array_agg", "array_append", "array_cat", "array_dims", "array_length",
    "array_lower", "array_ndims", "array_position", "array_positions", "array_prepend", "array_remove",
    "array_replace", "array_to_json", "array_to_string", "array_upper", "ascii", "asin", "atan", "atan2",
    "avg", "bit_and", "bit_length", "bit_or", "bool", "bool_and", "bool_or", "btrim", "cardinality",
    "cbrt", "ceil", "ceiling", "char", "char_length", "character_length", "chr", "clock_timestamp",
    "col_description", "concat", "concat_ws", "convert_from", "convert_to", "corr", "cos", "cot",
    "count", "covar_pop", "covar_samp", "cume_dist", "current_database", "current_schema",
    "current_schemas", "current_setting", "current_user", "currval", "date", "date_bin", "date_part",
    "date_trunc", "decode", "degrees", "dense_rank", "div", "encode", "every", "exp", "extract",
    "factorial", "family", "first_value", "float8", "floor", "format", "format_type", "gcd",
    "gen_random_uuid", "generate_series", "generate_subscripts", "has_column_privilege",
    "has_database_privilege", "has_schema_privilege", "has_table_privilege", "host", "inet_client_addr",
    "initcap", "int4", "int8", "isfinite", "json_agg", "json_array_elements", "json_array_elements_text",
    "json_array_length", "json_build_array", "json_build_object", "json_each", "json_each_text",
    "json_extract_path", "json_extract_path_text", "json_object", "json_object_agg", "json_object_keys",
    "json_populate_record", "json_strip_nulls", "json_typeof", "jsonb_agg", "jsonb_array_elements",
    "jsonb_array_elements_text", "jsonb_array_length", "jsonb_build_array", "jsonb_build_object",
    "jsonb_each", "jsonb_each_text", "jsonb_extract_path", "jsonb_extract_path_text", "jsonb_insert",
    "jsonb_object_agg", "jsonb_object_keys", "jsonb_path_exists", "jsonb_path_query",
    "jsonb_populate_record", "jsonb_pretty", "jsonb_set", "jsonb_strip_nulls", "jsonb_typeof",
    "justify_days", "justify_hours", "justify_interval", "lag", "last_value", "lastval", "lcm", "lead",
    "left", "length", "ln", "log", "log10", "lower", "lpad", "ltrim", "make_date", "make_interval",
    "make_time", "make_timestamp", "make_timestamptz", "masklen", "max", "md5", "min", "mod", "mode",
    "now", "nth_value", "ntile", "num_nonnulls", "num_nulls", "numeric", "obj_description",
    "octet_length", "overlay", "percent_rank", "percentile_cont", "percentile_disc", "pg_backend_pid",
    "pg_column_size", "pg_database_size", "pg_get_constraintdef", "pg_get_expr", "pg_get_functiondef",
    "pg_get_indexdef", "pg_get_triggerdef", "pg_get_userbyid", "pg_get_viewdef", "pg_indexes_size",
    "pg_is_in_recovery", "pg_last_xact_replay_timestamp", "pg_postmaster_start_time",
    "pg_relation_size", "pg_size_pretty", "pg_table_size", "pg_total_relation_size", "pg_typeof", "pi",
    "plainto_tsquery", "position", "power", "quote_ident", "quote_literal", "radians", "random", "rank",
    "regexp_match", "regexp_matches", "regexp_replace", "regexp_split_to_array",
    "regexp_split_to_table", "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2",
    "regr_slope", "regr_sxx", "regr_sxy", "regr_syy", "repeat", "replace", "reverse", "right", "round",
    "row_number", "row_to_json", "rpad", "rtrim", "scale", "session_user", "sign", "sin", "split_part",
    "sqrt", "starts_with", "statement_timestamp", "stddev", "stddev_pop", "stddev_samp", "string_agg",
    "string_to_array", "strpos", "substr", "substring", "sum", "tan", "text", "time", "timeofday",
    "to_char", "to_date", "to_hex", "to_json", "to_jsonb", "to_number", "to_regclass", "to_timestamp",
    "to_tsquery", "to_tsvector", "transaction_timestamp", "translate", "trunc", "ts_headline", "ts_rank",
    "unnest", "upper", "var_pop", "var_samp", "variance", "version", "websearch_to_tsquery",
    "width_bucket",
    # aggregate support functions (IMMUTABLE) and trigger nesting depth (STABLE)
    "float8_accum", "float8_combine", "float8_regr_accum", "float8_regr_combine", "booland_statefunc",
    "boolor_statefunc", "pg_trigger_depth",
    # what PostgreSQL's grammar turns SQL syntax into (AT TIME ZONE, OVERLAPS, IS NORMALIZED, ...)
    "timezone", "overlaps", "normalize", "is_normalized", "pg_collation_for", "system_user",
    "xmlexists", "similar_to_escape",
}

# Native in MySQL 8 and MariaDB 10.11 (or reserved words, which a stored function cannot be called as).
_MYSQL = {
    "abs", "acos", "asin", "atan", "atan2", "ceil", "ceiling", "conv", "cos", "cot", "crc32", "degrees",
    "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians", "rand",
    "round", "sign", "sin", "sqrt", "tan", "truncate",
    "ascii", "bin", "bit_length", "bit_count", "char", "char_length", "character_length", "concat",
    "concat_ws", "elt", "export_set", "field", "find_in_set", "format", "from_base64", "hex", "insert",
    "instr", "lcase", "left", "length", "locate", "lower", "lpad", "ltrim", "make_set", "mid", "oct",
    "octet_length", "ord", "position", "quote", "repeat", "replace", "reverse", "right", "rpad", "rtrim",
    "soundex", "space", "strcmp", "substr", "substring", "substring_index", "to_base64", "trim",
    "ucase", "unhex", "upper", "weight_string", "regexp_instr", "regexp_replace", "regexp_substr",
    "md5", "sha", "sha1", "sha2", "compress", "uncompress", "uncompressed_length",
    "adddate", "addtime", "convert_tz", "curdate", "curtime", "current_date", "current_time",
    "current_timestamp", "date", "date_add", "date_format", "date_sub", "datediff", "day", "dayname",
    "dayofmonth", "dayofweek", "dayofyear", "extract", "from_days", "from_unixtime", "get_format", "hour",
    "last_day", "localtime", "localtimestamp", "makedate", "maketime", "microsecond", "minute", "month",
    "monthname", "now", "period_add", "period_diff", "quarter", "sec_to_time", "second", "str_to_date",
    "subdate", "subtime", "sysdate", "time", "time_format", "time_to_sec", "timediff", "timestamp",
    "timestampadd", "timestampdiff", "to_days", "to_seconds", "unix_timestamp", "utc_date", "utc_time",
    "utc_timestamp", "week", "weekday", "weekofyear", "year", "yearweek",
    "avg", "bit_and", "bit_or", "bit_xor", "count", "group_concat", "max", "min", "std", "stddev",
    "stddev_pop", "stddev_samp", "sum", "var_pop", "var_samp", "variance", "json_arrayagg",
    "json_objectagg", "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag",
    "lead", "first_value", "last_value", "nth_value",
    "json_array", "json_array_append", "json_array_insert", "json_contains", "json_contains_path",
    "json_depth", "json_extract", "json_insert", "json_keys", "json_length", "json_merge_patch",
    "json_merge_preserve", "json_object", "json_quote", "json_remove", "json_replace", "json_search",
    "json_set", "json_type", "json_unquote", "json_valid", "json_value", "json_table",
    "coalesce", "greatest", "if", "ifnull", "isnull", "least", "nullif",
    "charset", "coercibility", "collation", "connection_id", "current_user", "database", "found_rows",
    "row_count", "schema", "session_user", "system_user", "user", "version",
    "inet_aton", "inet_ntoa", "inet6_aton", "inet6_ntoa", "is_ipv4", "is_ipv6", "uuid", "uuid_short",
    "is_free_lock", "is_used_lock", "cast", "convert",
}

# `PRAGMA function_list` built-ins of SQLite 3.40 (3.43+ adds concat, concat_ws, string_agg, timediff,
# octet_length), without load_extension, fts3_tokenizer, sqlite_log and FTS's optimize.
_SQLITE = {
    "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "avg", "ceil", "ceiling",
    "changes", "char", "coalesce", "cos", "cosh", "count", "cume_dist", "current_date", "current_time",
    "current_timestamp", "date", "datetime", "degrees", "dense_rank", "exp", "first_value", "floor",
    "format", "glob", "group_concat", "hex", "ifnull", "iif", "instr", "json", "json_array",
    "json_array_length", "json_extract", "json_group_array", "json_group_object", "json_insert",
    "json_object", "json_patch", "json_quote", "json_remove", "json_replace", "json_set", "json_type",
    "json_valid", "julianday", "lag", "last_insert_rowid", "last_value", "lead", "length", "like",
    "likelihood", "likely", "ln", "log", "log10", "log2", "lower", "ltrim", "max", "min", "mod",
    "nth_value", "ntile", "nullif", "percent_rank", "pi", "pow", "power", "printf", "quote", "radians",
    "random", "randomblob", "rank", "replace", "round", "row_number", "rtrim", "sign", "sin", "sinh",
    "soundex", "sqlite_source_id", "sqlite_version", "sqrt", "strftime", "substr", "substring", "sum",
    "tan", "tanh", "time", "total", "total_changes", "trim", "trunc", "typeof", "unicode", "unixepoch",
    "unlikely", "upper", "zeroblob", "concat", "concat_ws", "string_agg", "timediff", "octet_length",
    "json_each", "json_tree", "pragma_table_info", "pragma_table_xinfo", "pragma_index_list",
    "pragma_index_info", "pragma_index_xinfo", "pragma_foreign_key_list", "cast",
}

SAFE_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgres": frozenset(_POSTGRES),
    "mysql": frozenset(_MYSQL),
    "sqlite": frozenset(_SQLITE),
}

# Words that precede `(` as SQL syntax, not as calls of a function someone could define under that
# name: sqlglot may still make an `Anonymous` node of them, and the MySQL/SQLite name scan sees them.
SYNTAX_NAMES: dict[str, frozenset[str]] = {
    "postgres": frozenset({
        "all", "any", "some", "exists", "array", "row", "cast", "coalesce", "nullif", "greatest", "least",
        "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp", "trim",
        "extract", "position", "substring", "overlay", "values", "grouping", "xmlelement", "xmlforest",
        "xmlconcat", "xmlparse", "xmlpi", "xmlroot", "xmlserialize", "xmltable",
    }),
    "mysql": frozenset({
        "all", "any", "some", "exists", "row", "values", "interval", "match", "against", "columns",
        "char", "varchar", "binary", "varbinary", "decimal", "dec", "numeric", "signed", "unsigned",
        "integer", "int", "float", "double", "real", "datetime", "nchar", "json",
    }),
    "sqlite": frozenset({
        "all", "any", "some", "exists", "row", "values", "filter", "varchar", "char", "nchar", "decimal", "numeric",
        "int", "integer", "real", "double", "float", "text", "blob", "character", "nvarchar", "varying",
    }),
}

# PostgreSQL's own operators (DISTINCT oprname FROM pg_operator in pg_catalog; every one is IMMUTABLE
# or STABLE), plus the words its grammar uses as operator names. An operator outside this set, or one
# qualified with another schema (OPERATOR(s.+)), is a user-defined function call.
POSTGRES_OPERATORS = frozenset("""
!! !~ !~* !~~ !~~* # ## #- #> #>> % & && &< &<| &> * *< *<= *<> *= *> *>= + - -> ->> -|- / < <-> << <<=
<<| <= <> <@ <^ = > >= >> >>= >^ ? ?# ?& ?- ?-| ?| ?|| @ @-@ @> @? @@ @@@ ^ ^@ | |&> |/ |>> || ||/ ~ ~*
~<=~ ~<~ ~= ~>=~ ~>~ ~~ ~~*
""".split()) | {"BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC", "NOT BETWEEN SYMMETRIC"}

# Schemas whose types and functions only a superuser can add to.
POSTGRES_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})

# Session settings that change only how this session formats, plans or waits: harmless.
# Anything else (role, authorization, replication role, transaction access mode, ...) needs approval.
# Not here on purpose: standard_conforming_strings (with it off, `'a\'` no longer ends where our
# lexers think it does); MySQL's character_set_client (see MYSQL_SAFE_CHARSETS).
SAFE_SESSION_VARIABLES: dict[str, frozenset[str]] = {
    "postgres": frozenset({
        "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "search_path",
        "timezone", "time zone", "datestyle", "intervalstyle", "extra_float_digits",
        "client_encoding", "client_min_messages", "application_name", "work_mem",
        "maintenance_work_mem", "enable_seqscan", "enable_indexscan", "enable_bitmapscan",
        "enable_hashjoin", "enable_mergejoin", "enable_nestloop", "enable_sort", "enable_hashagg",
        "enable_indexonlyscan", "enable_material", "enable_partitionwise_join",
        "enable_partitionwise_aggregate", "random_page_cost", "seq_page_cost", "cpu_tuple_cost",
        "jit", "max_parallel_workers_per_gather", "parallel_setup_cost", "parallel_tuple_cost",
        "bytea_output", "xmloption", "lc_messages", "lc_monetary", "lc_numeric", "lc_time",
        "geqo", "join_collapse_limit", "from_collapse_limit", "plan_cache_mode",
        "default_statistics_target", "names",
    }),
    "mysql": frozenset({
        "time_zone", "sql_select_limit", "max_execution_time",
        "max_statement_time", "lock_wait_timeout", "innodb_lock_wait_timeout", "net_read_timeout",
        "net_write_timeout", "group_concat_max_len", "character_set_results",
        "character_set_connection", "collation_connection",
        "div_precision_increment", "lc_time_names", "optimizer_search_depth", "long_query_time",
        "profiling", "wait_timeout", "interactive_timeout",
    }),
    "sqlite": frozenset(),
}

# Character sets a MySQL client may switch to: ones in which no multi-byte character can end in a byte
# that looks like `\`, `'` or `"`. With SET NAMES gbk/sjis/big5/cp932/gb18030 the server would read the
# UTF-8 bytes the driver sends differently: `'中\'` ends its string early, and what follows runs.
MYSQL_SAFE_CHARSETS = frozenset({"utf8mb4", "utf8mb3", "utf8", "latin1", "ascii", "default"})

# SQLite PRAGMAs that only read (and only when not assigned a value).
READ_ONLY_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "database_list", "collation_list", "function_list",
    "module_list", "pragma_list", "compile_options", "integrity_check", "quick_check",
    "page_count", "page_size", "freelist_count", "encoding", "user_version", "schema_version",
    "application_id", "data_version", "foreign_keys", "journal_mode", "busy_timeout",
})

# ... and of those, the ones whose argument names a table, index or row limit. For every other PRAGMA
# `PRAGMA x(v)` is the same as `PRAGMA x = v`: it sets the value.
PRAGMAS_WITH_ARGUMENT = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
})
