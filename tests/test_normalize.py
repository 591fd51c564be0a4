"""classify.normalize: the form policy patterns are matched against, from each dialect's own lexer."""
import pytest

from classify.normalize import normal_forms, normalize
from classify.statements import Kind, Statement
from config.settings import Policy
from gate.policy import Reject, judge

DROP_TABLE = Policy(name="strict", blocked=(r"\bDROP\s+TABLE\b",))


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
@pytest.mark.parametrize("text", ["DROP/**/TABLE t", "drop\n  table t", "DROP -- x\nTABLE t", "DrOp\tTaBlE t"])
def test_comments_whitespace_and_case_are_normalised(dialect, text):
    assert normalize(text, dialect) == "drop table t"


@pytest.mark.parametrize("text", ["DROP/**/TABLE t", "drop\n  table t", "DROP -- x\nTABLE t",
                                  "DROP /* a /* nested */ comment */ TABLE t", "/*!50000 DROP */ TABLE t"])
def test_a_blocked_pattern_matches_the_normalised_statement(text):
    decision = judge(Statement(0, text, Kind.DDL, True, "DROP TABLE changes the schema", ("t",), None), DROP_TABLE)
    assert isinstance(decision, Reject) and "blocked by policy 'strict'" in decision.message


@pytest.mark.parametrize("dialect, text, expected", [
    ("postgres", "SELECT '--x'  ,  $$ /* y */ $$", "select '--x' , $$ /* y */ $$"),
    ("mysql", "SELECT `a  b` # c\n FROM t", "select `a  b` from t"),
    ("sqlite", "SELECT count(*) FROM t", "select count(*) from t"),
    ("postgres", "SELECT 'unterminated   x", "select 'unterminated x"),
    ("mongodb", "db.t.drop( )", "db.t.drop( )"),
])
def test_literals_stay_whole_and_lexer_failures_fall_back(dialect, text, expected):
    assert normalize(text, dialect) == expected


def test_the_raw_text_is_always_one_of_the_forms():
    assert normal_forms("SELECT  1")[0] == "SELECT  1" and "select 1" in normal_forms("SELECT  1")
