"""The suite's own schedule (tests/conftest.py): ``slow`` tests first, the rest in order."""

from __future__ import annotations

from tests.conftest import pytest_collection_modifyitems


class _Item:
    def __init__(self, name: str, slow: bool):
        self.name, self.slow = name, slow

    def get_closest_marker(self, name: str):
        return object() if name == "slow" and self.slow else None


def test_slow_tests_are_moved_to_the_front_and_the_order_is_otherwise_kept():
    items = [_Item("a", False), _Item("b", True), _Item("c", False), _Item("d", True), _Item("e", False)]
    pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [i.name for i in items] == ["b", "d", "a", "c", "e"]
