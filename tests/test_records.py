"""The item record's typed shape is the store's columns and the `items --json` contract."""

from __future__ import annotations

from safeguard.records import ItemFields, ItemJson, ItemRecord
from safeguard.store.models import Item
from safeguard.store.summary import ITEM_FIELDS


def test_every_field_a_worker_fills_is_a_column_of_the_store() -> None:
    columns = {column.name for column in Item.__table__.columns}
    # "parent" is the container's index in the unit's records: the writer turns it into
    # parent_id; everything else is stored column for column
    fields = ItemRecord.__required_keys__ | ItemRecord.__optional_keys__
    assert sorted(fields - columns) == ["parent"]


def test_items_json_has_exactly_the_documented_keys() -> None:
    assert sorted(ItemJson.__required_keys__ | ItemJson.__optional_keys__) == sorted(ITEM_FIELDS)
    assert ItemFields.__optional_keys__ <= ItemJson.__optional_keys__ | ItemJson.__required_keys__


def test_the_store_adds_what_a_worker_cannot_know() -> None:
    added = ItemJson.__required_keys__
    assert {"evidence", "container", "matches", "known_good", "category_conflict"} <= added
