"""The docstring examples of the Slack service modules hold (approvals.slack is covered with approvals)."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import service


def _modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(service.__path__, prefix="service."))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} fail"


def test_the_pure_modules_have_examples():
    for name in ("service.feed", "service.cards", "service.sender", "service.slack_settings"):
        assert doctest.testmod(importlib.import_module(name)).attempted > 0, name
