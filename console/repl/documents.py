"""MongoDB results as mongosh shows them: documents in relaxed Extended JSON, 20 to a page (``it``
shows the next), a count as a number, ``show dbs`` as names and sizes, never a table. PURE.

>>> from engines.base import ResultSet
>>> pages = paged("db.deploys.countDocuments({})", ResultSet(("count",), ((42,),), 1), "read")
>>> pages.pages, pages.end
((('42',),), '')
>>> many = ResultSet(("_id", "n"), tuple((i, i * i) for i in range(45)), 45)
>>> pages = paged("db.deploys.find()", many, "read")
>>> len(pages.pages), pages.pages[0][:4]
(3, ('{', '  "_id": 0,', '  "n": 0', '}'))
"""
from __future__ import annotations

from dataclasses import dataclass

from console import render
from engines.base import ResultSet

PAGE = render.MONGO_PAGE
SCALAR_METHODS = frozenset({"countDocuments", "estimatedDocumentCount", "version", "getName", "dataSize",
                            "totalIndexSize"})
COUNTING_MODIFIERS = frozenset({"count", "size", "itcount"})
LIST_METHODS = frozenset({"distinct", "getCollectionNames"})


@dataclass(frozen=True)
class Pages:
    pages: tuple[tuple[str, ...], ...]   # the first is shown at once, each `it` shows the next
    end: str = ""                        # after the last page: how much was not fetched, if anything


def paged(text: str, result: ResultSet | None, kind: str) -> Pages:
    from classify.mongosh.shell import MongoParseError, parse
    try:
        command = parse(text)
    except (MongoParseError, RecursionError):
        command = None
    method = command.method if command else ""
    if result is None:
        return Pages((("OK",),))
    if method == "use":
        return Pages(((f"switched to db {command.arg(0)}",),))
    if method == "show" and command.arg(0) in ("dbs", "databases"):
        return Pages((tuple(_databases(result)),))
    if method == "show":   # show collections: one name a line
        return Pages((tuple(render.visible(str(row[0])) for row in result.rows),))
    if not result.columns:
        return Pages(((_written(result, kind) if kind != "read" else "(no documents)",),))
    modifiers = {name for name, _ in command.modifiers} if command else set()
    if (method in SCALAR_METHODS or modifiers & COUNTING_MODIFIERS) and len(result.rows) == 1 \
            and len(result.columns) == 1:
        return Pages((tuple(render.document_lines(render.ejson(result.rows[0][0]))),))
    if method in LIST_METHODS:
        return Pages((tuple(render.document_lines(render.ejson([row[0] for row in result.rows]))),),
                     _note(result, "values"))
    documents = render.documents(result)
    if not documents:
        return Pages((("(no documents)",),))
    pages = tuple(tuple(line for doc in documents[i:i + PAGE] for line in doc)
                  for i in range(0, len(documents), PAGE))
    return Pages(pages, _note(result, "documents"))


def _note(result: ResultSet, what: str) -> str:
    if not result.truncated:
        return ""
    shown = len(result.rows)
    if result.rowcount > shown:
        return f"(showing {render.count(shown)} of {render.count(result.rowcount)} {what})"
    return f"(showing the first {render.count(shown)} {what}; more were not fetched)"


def _written(result: ResultSet, kind: str) -> str:
    if result.rowcount < 0 or kind not in ("write", "unknown"):
        return "OK"
    return f"OK, {result.rowcount} document{'s' if result.rowcount != 1 else ''} affected"


def _databases(result: ResultSet) -> list[str]:
    """``show dbs``: each database and its size on disk, as mongosh lists them."""
    names = list(result.columns)
    rows = [dict(zip(names, row)) for row in result.rows]
    width = max((len(str(r.get("name", ""))) for r in rows), default=0)
    return [f"{render.visible(str(r.get('name', ''))).ljust(width)}  {_size(r.get('sizeOnDisk'))}" for r in rows]


def _size(value) -> str:
    """
    >>> _size(40960), _size(73728 * 1024), _size(None)
    ('40.00 KiB', '72.00 MiB', '')
    """
    if not isinstance(value, (int, float)):
        return ""
    size, unit = float(value), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{size:.2f} {unit}" if unit != "B" else f"{int(size)} B"
