"""What may run without approval on MySQL/MariaDB and SQLite, and the session settings and PRAGMAs that
are harmless: whitelists, so anything new or unknown needs approval. (PostgreSQL's built-ins come from
its own catalog instead: classify/sql/builtins.py and data/.)

Functions are judged by the name AS WRITTEN (the name token before `(`), never by the node sqlglot
makes of it: sqlglot knows ~670 function names from many dialects (`read_csv`, `to_file`, `predict`,
...), and on MariaDB/MySQL a name that is not a native function resolves to a stored function in the
current database.

So each dialect lists only functions that are built into that server, checked there, and free of side
effects:
- mysql: native in both MySQL 8 and MariaDB 10.11 (on MariaDB `SELECT name()` does not fall through to
  "FUNCTION db.name does not exist"; tests/test_builtin_functions.py checks that against the server).
  This list stays written by hand: MySQL has no catalog of its native functions, and MariaDB's
  information_schema.SQL_FUNCTIONS names only some of them (not DATE, IF, HOUR, ...) and says nothing
  of their side effects; names native in only one of the two servers are left out;
- sqlite: listed by `PRAGMA function_list` as built in (plus the JSON and PRAGMA table-valued functions).
What a READ ONLY transaction does not stop (SLEEP, GET_LOCK, LOAD_FILE, load_extension, ...) is listed
in UNSAFE_FUNCTIONS and may never appear in a safe list.
"""
from __future__ import annotations

# Never safe, whatever node sqlglot makes of them (checked by lower-case name first).
UNSAFE_FUNCTIONS = frozenset({
    # MySQL / MariaDB
    "sleep", "benchmark", "get_lock", "release_lock", "release_all_locks", "load_file",
    "master_pos_wait", "source_pos_wait", "master_gtid_wait", "wait_for_executed_gtid_set",
    "last_insert_id", "sys_exec", "sys_eval",
    # SQLite (load_extension/fts3_tokenizer built in; the rest from the sqlite3 shell's extensions)
    "load_extension", "writefile", "readfile", "edit", "fts3_tokenizer", "sqlite_log", "optimize",
})

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

# Session settings that change only how this session formats or plans: harmless.
# Anything else (role, authorization, replication role, transaction access mode, ...) needs approval.
# Not here on purpose: standard_conforming_strings (with it off, `'a\'` no longer ends where our
# lexers think it does); MySQL's character_set_client (see MYSQL_SAFE_CHARSETS); and what session.py
# never lets pass, whatever this list says (search_path, timeouts, work_mem and other memory limits,
# sql_select_limit, ...): a doctest in session.py keeps the two apart.
SAFE_SESSION_VARIABLES: dict[str, frozenset[str]] = {
    "postgres": frozenset({
        "timezone", "time zone", "datestyle", "intervalstyle", "extra_float_digits",
        "client_encoding", "client_min_messages", "application_name",
        "enable_seqscan", "enable_indexscan", "enable_bitmapscan",
        "enable_hashjoin", "enable_mergejoin", "enable_nestloop", "enable_sort", "enable_hashagg",
        "enable_indexonlyscan", "enable_material", "enable_partitionwise_join",
        "enable_partitionwise_aggregate", "enable_memoize", "enable_incremental_sort", "enable_gathermerge",
        "enable_parallel_append", "enable_parallel_hash", "enable_partition_pruning", "enable_tidscan",
        "enable_async_append", "constraint_exclusion", "geqo_threshold", "geqo_effort", "cpu_index_tuple_cost",
        "cpu_operator_cost", "effective_cache_size", "cursor_tuple_fraction",
        "random_page_cost", "seq_page_cost", "cpu_tuple_cost",
        "jit", "parallel_setup_cost", "parallel_tuple_cost",
        "bytea_output", "xmloption", "lc_messages", "lc_monetary", "lc_numeric", "lc_time",
        "geqo", "join_collapse_limit", "from_collapse_limit", "plan_cache_mode",
        "default_statistics_target", "names",
    }),
    "mysql": frozenset({
        "time_zone", "character_set_results", "character_set_connection", "collation_connection",
        "div_precision_increment", "lc_time_names", "profiling",
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
