"""What may run without approval, per dialect: a whitelist, so anything new or unknown needs approval.

Functions: sqlglot turns the functions it knows into typed nodes (Count, Lower, ...); those are plain
computations, except the few in UNSAFE_FUNCTIONS. Functions it does not know become `Anonymous`
nodes; an anonymous function is allowed only when its name is listed here for the dialect.
FINDINGS.md lists what a READ ONLY transaction does not stop (pg_terminate_backend, dblink_exec,
advisory locks, lo_export, set_config, ...): none of those may ever appear here.
"""
from __future__ import annotations

# Never safe, whatever node sqlglot makes of them (checked by lower-case name first).
UNSAFE_FUNCTIONS = frozenset({
    # PostgreSQL: side effects a read-only transaction does not stop, or writes
    "nextval", "setval", "pg_terminate_backend", "pg_cancel_backend", "dblink",
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
    "master_pos_wait", "source_pos_wait", "last_insert_id", "sys_exec", "sys_eval",
    # SQLite
    "load_extension", "writefile", "edit", "fts3_tokenizer",
})

_COMMON = {
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "mod", "power", "sqrt", "exp", "ln", "log",
    "sign", "greatest", "least", "coalesce", "nullif", "lower", "upper", "length", "char_length",
    "character_length", "octet_length", "substr", "substring", "replace", "trim", "ltrim", "rtrim",
    "concat", "concat_ws", "left", "right", "lpad", "rpad", "reverse", "position", "strpos", "instr",
    "count", "sum", "avg", "min", "max", "cast", "random", "rand", "pi", "sin", "cos", "tan",
    "degrees", "radians", "hex", "md5", "sha1", "sha2", "format", "quote_ident", "quote_literal",
    "initcap", "repeat", "split_part", "translate", "ascii", "chr", "char", "date", "time",
    "now", "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
    "date_trunc", "date_part", "extract", "age", "to_char", "to_date", "to_timestamp", "to_number",
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value", "string_agg", "array_agg", "group_concat", "bool_and",
    "bool_or", "every", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
    "json_extract", "json_object", "json_array", "ifnull", "nvl", "iif", "typeof", "printf",
    "unicode", "zeroblob", "randomblob", "total", "julianday", "strftime", "datetime", "unixepoch",
}

SAFE_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgres": frozenset(_COMMON | {
        "version", "currval", "lastval", "current_database", "current_schema", "current_schemas", "current_user",
        "session_user", "current_setting", "pg_typeof", "pg_size_pretty", "pg_relation_size",
        "pg_total_relation_size", "pg_table_size", "pg_indexes_size", "pg_database_size",
        "pg_column_size", "pg_get_viewdef", "pg_get_indexdef", "pg_get_constraintdef",
        "pg_get_functiondef", "pg_get_triggerdef", "pg_get_expr", "pg_get_userbyid",
        "pg_backend_pid", "pg_postmaster_start_time", "pg_is_in_recovery", "pg_last_xact_replay_timestamp",
        "obj_description", "col_description", "format_type", "has_table_privilege",
        "has_schema_privilege", "has_column_privilege", "has_database_privilege", "to_regclass",
        "generate_series", "generate_subscripts", "unnest", "array_length", "array_lower", "array_upper",
        "cardinality", "array_position", "array_positions", "array_to_string", "string_to_array",
        "array_cat", "array_append", "array_prepend", "array_remove", "array_replace", "array_dims",
        "array_ndims", "regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
        "regexp_split_to_table", "starts_with", "btrim", "bit_length", "encode", "decode",
        "convert_from", "convert_to", "to_hex", "gen_random_uuid", "uuid_generate_v4", "clock_timestamp",
        "statement_timestamp", "transaction_timestamp", "timeofday", "make_date", "make_time",
        "make_timestamp", "make_timestamptz", "make_interval", "justify_days", "justify_hours",
        "justify_interval", "date_bin", "isfinite", "to_json", "to_jsonb", "row_to_json",
        "array_to_json", "json_build_object", "jsonb_build_object", "json_build_array",
        "jsonb_build_array", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg",
        "json_each", "jsonb_each", "json_each_text", "jsonb_each_text", "json_array_elements",
        "jsonb_array_elements", "json_array_elements_text", "jsonb_array_elements_text",
        "json_array_length", "jsonb_array_length", "json_typeof", "jsonb_typeof", "jsonb_pretty",
        "jsonb_set", "jsonb_insert", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_path_query",
        "jsonb_path_exists", "jsonb_extract_path", "jsonb_extract_path_text", "json_extract_path",
        "json_extract_path_text", "json_object_keys", "jsonb_object_keys", "json_populate_record",
        "jsonb_populate_record", "width_bucket", "div", "cbrt", "factorial", "gcd", "lcm", "scale",
        "log10", "atan", "atan2", "asin", "acos", "cot", "setseed", "int4", "int8", "float8", "text",
        "numeric", "bool", "mode", "percentile_cont", "percentile_disc", "corr", "covar_pop",
        "covar_samp", "regr_slope", "regr_intercept", "bit_and", "bit_or", "xor", "num_nulls",
        "num_nonnulls", "to_tsvector", "to_tsquery", "plainto_tsquery", "ts_rank", "ts_headline",
        "websearch_to_tsquery", "inet_client_addr", "host", "masklen", "family", "overlay",
        "exists", "row", "array", "nullif", "any", "all", "some",
    }),
    "mysql": frozenset(_COMMON | {
        "database", "schema", "user", "current_user", "session_user", "system_user", "version",
        "connection_id", "found_rows", "row_count", "date_format", "str_to_date", "date_add",
        "date_sub", "adddate", "subdate", "datediff", "timestampdiff", "timestampadd", "timediff",
        "from_unixtime", "unix_timestamp", "curdate", "curtime", "sysdate", "utc_timestamp",
        "utc_date", "utc_time", "year", "month", "day", "dayofmonth", "dayofweek", "dayofyear",
        "hour", "minute", "second", "week", "weekday", "yearweek", "last_day", "makedate",
        "maketime", "monthname", "dayname", "quarter", "if", "field", "find_in_set", "elt",
        "locate", "mid", "space", "strcmp", "format", "inet_aton", "inet_ntoa", "uuid", "uuid_short",
        "json_unquote", "json_contains", "json_contains_path", "json_keys", "json_length",
        "json_valid", "json_type", "json_arrayagg", "json_objectagg", "json_search", "json_value",
        "regexp_like", "regexp_instr", "regexp_substr", "regexp_replace", "conv", "bin", "oct",
        "unhex", "crc32", "to_base64", "from_base64", "soundex", "char_length", "bit_count",
        "truncate", "std", "convert", "charset", "collation", "coercibility",
    }),
    "sqlite": frozenset(_COMMON | {
        "sqlite_version", "changes", "total_changes", "glob", "like", "likelihood", "likely",
        "unlikely", "quote", "soundex", "json", "json_valid", "json_type", "json_array_length",
        "json_group_array", "json_group_object", "json_each", "json_tree", "json_patch",
        "json_insert", "json_replace", "json_set", "json_remove", "json_quote", "format",
        "octet_length", "concat", "time", "timediff", "median", "percentile", "generate_series",
        "pragma_table_info", "pragma_index_list", "pragma_foreign_key_list",
    }),
}

# Session settings that change only how this session formats, plans or waits: harmless.
# Anything else (role, authorization, replication role, transaction access mode, ...) needs approval.
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
        "default_statistics_target", "standard_conforming_strings", "names",
    }),
    "mysql": frozenset({
        "names", "character set", "charset", "time_zone", "sql_select_limit", "max_execution_time",
        "max_statement_time", "lock_wait_timeout", "innodb_lock_wait_timeout", "net_read_timeout",
        "net_write_timeout", "group_concat_max_len", "character_set_client",
        "character_set_results", "character_set_connection", "collation_connection",
        "div_precision_increment", "lc_time_names", "optimizer_search_depth", "long_query_time",
        "profiling", "wait_timeout", "interactive_timeout",
    }),
    "sqlite": frozenset(),
}

# SQLite PRAGMAs that only read (and only when not assigned a value).
READ_ONLY_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "database_list", "collation_list", "function_list",
    "module_list", "pragma_list", "compile_options", "integrity_check", "quick_check",
    "page_count", "page_size", "freelist_count", "encoding", "user_version", "schema_version",
    "application_id", "data_version", "foreign_keys", "journal_mode", "busy_timeout",
})
