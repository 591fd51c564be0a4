"""console.repl.completer.CatalogCompleter with real prompt_toolkit Documents."""
from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from console.repl.completer import CatalogCompleter
from console.demo import demo_database
from engines import open_driver
from engines.base import Catalog, Column, Table

CATALOG = Catalog((
    Table("public", "sites", (Column("id", "integer", False), Column("name", "text", False),
                              Column("region", "text", False)), ("id",)),
    Table("public", "deploys", (Column("id", "integer", False), Column("site_id", "integer", False),
                                Column("status", "text", False)), ("id",)),
    Table("billing", "invoices", (Column("id", "integer", False), Column("amount", "numeric")), ("id",)),
))


def complete(text: str, catalog: Catalog = CATALOG, cursor: int | None = None) -> list[str]:
    document = Document(text, cursor_position=len(text) if cursor is None else cursor)
    return [c.text for c in CatalogCompleter(lambda: catalog).get_completions(document, CompleteEvent())]


def test_tables_after_from_join_update_and_describe():
    assert complete("SELECT * FROM ") == ["sites", "deploys", "billing.invoices"]
    assert complete("SELECT * FROM s") == ["sites"]
    assert complete("select * from sites s join de") == ["deploys"]
    assert complete("UPDATE d") == ["deploys"]
    assert complete("\\d si") == ["sites"]


def test_columns_after_a_table_or_its_alias():
    assert complete("SELECT deploys.") == ["id", "site_id", "status"]
    assert complete("SELECT deploys.s") == ["site_id", "status"]
    assert complete("SELECT * FROM sites s WHERE s.re") == ["region"]
    text = "SELECT d.st FROM deploys AS d"   # the alias is defined after the cursor
    assert complete(text, cursor=len("SELECT d.st")) == ["status"]
    assert complete("SELECT d.st") == []       # no such alias or table


def test_tables_of_a_schema_after_its_name():
    assert complete("SELECT * FROM billing.") == ["invoices"]


def test_columns_of_the_tables_in_the_statement_come_first():
    assert complete("SELECT * FROM sites WHERE re") == ["region", "returning"]
    assert complete("SELECT s FROM deploys", cursor=len("SELECT s")) == ["site_id", "status", "select", "set",
                                                                        "sites"]
    assert complete("SELECT a") == ["amount", "and", "as", "alter", "asc"]   # no table named: all columns


def test_keywords_in_the_case_typed():
    assert complete("SEL") == ["SELECT"]
    assert complete("sel") == ["select"]
    assert complete("SELECT * FROM sites WH") == ["WHERE", "WHEN"]
    assert "GROUP BY" in complete("SELECT status FROM deploys GR")


def test_meta_commands():
    assert complete("\\ti") == ["\\timing"]
    assert set(complete("\\d")) == {"\\dt"}
    assert "\\pending" in complete("\\")


def test_nothing_offered_for_a_complete_word_or_an_unknown_table():
    assert complete("SELECT * FROM sites") == []
    assert complete("SELECT nowhere.") == []


def test_an_unreadable_catalog_means_no_suggestions_not_an_error():
    def broken() -> Catalog:
        raise RuntimeError("connection lost")
    document = Document("SELECT * FROM s")
    assert list(CatalogCompleter(broken).get_completions(document, CompleteEvent())) == []


@pytest.fixture
def demo_driver(tmp_path):
    driver = open_driver(f"sqlite:///{demo_database(tmp_path / 'demo.db')}")
    yield driver
    driver.close()


def test_completes_from_a_live_database_catalog(demo_driver):
    completer = CatalogCompleter(demo_driver.catalog)
    complete_live = lambda text: [c.text for c in completer.get_completions(Document(text), CompleteEvent())]
    assert complete_live("SELECT * FROM de") == ["deploys"]
    assert complete_live("SELECT deploys.comm") == ["commit_sha"]
    completions = list(completer.get_completions(Document("SELECT * FROM si"), CompleteEvent()))
    assert [(c.text, c.start_position, c.display_meta_text) for c in completions] == [("sites", -2, "table")]
