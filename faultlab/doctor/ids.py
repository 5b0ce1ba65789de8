"""The ids the doctor sends in a path (``/items/{item_id}``): what a create answered with, or else what a read of
the collection lists (an app whose creates the doctor cannot make, or that answer without the new item, or a
database seeded before the app started). Kept by collection, so ``/items/{item_id}`` gets an item's id and not
a user's."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Found", "Ids", "first_listed", "id_in"]

_LIST_KEYS = ("data", "items", "results", "content", "records", "rows")  # where paginated answers keep the list


@dataclass(frozen=True)
class Found:
    value: object
    source: str  # "created by POST /items" or "listed by GET /items"


@dataclass
class Ids:
    by_collection: dict[str, Found] = field(default_factory=dict)

    def keep(self, collection: str, item: object, source: str) -> None:
        """The first id seen for ``collection`` (a create's answer, or a listed item) is kept."""
        value = id_in(item)
        if value is not None and collection not in self.by_collection:
            self.by_collection[collection] = Found(value, source)

    def for_collection(self, collection: str) -> Found | None:
        """The id kept for the collection, else for the nearest collection above it (``/teams`` for
        ``/teams/{team_id}/members``)."""
        path = collection
        while True:
            if path in self.by_collection:
                return self.by_collection[path]
            if not path:
                return None
            path = path.rsplit("/", 1)[0]


def id_in(item: object) -> object | None:
    """An item's id: its ``id``, else the one field named like an id (``item_id``, ``uuid``)."""
    if not isinstance(item, dict):
        return None
    value: object = item.get("id")
    if value is not None and not isinstance(value, dict | list):
        return value
    named = [v for k, v in item.items() if (k.endswith("_id") or k == "uuid") and isinstance(v, int | str)]
    return named[0] if len(named) == 1 else None


def first_listed(body: object) -> object | None:
    """The first item of a list answer: a JSON array, or one kept under ``data``/``items``/... of an object."""
    if isinstance(body, dict):
        body = next((body[k] for k in _LIST_KEYS if isinstance(body.get(k), list)), None)
    if isinstance(body, list):
        return next((item for item in body if id_in(item) is not None), None)
    return None
