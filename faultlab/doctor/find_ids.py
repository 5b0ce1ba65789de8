"""The id for an operation by id (``GET /items/{item_id}``): the one its collection's create answered with, else
the first item its collection's read lists now (asked once more, as the creates may have made rows since, or the
database was seeded), else the first id any create answered with. When there is none, why: what the create and
the list answered, so "no id" is never the whole story (a 401 on the create is the real reason)."""

from __future__ import annotations

from faultlab.doctor.contract import CheckupContext
from faultlab.doctor.ids import Found, first_listed
from faultlab.doctor.openapi import Operation, is_collection_read
from faultlab.doctor.report import tally

__all__ = ["find_id", "no_id"]


def find_id(ctx: CheckupContext, operation: Operation) -> Found | None:
    collection = operation.collection
    if (found := ctx.ids.for_collection(collection)) is not None:
        return found
    for read in _reads_of(ctx, collection):
        response = ctx.live.send(read)
        ctx.live.settled()
        if 200 <= response.status_code < 300:
            try:
                body = response.json()
            except ValueError:
                continue
            if (item := first_listed(body)) is not None:
                ctx.ids.keep(read.collection, item, f"listed by {read.label}")
                return ctx.ids.for_collection(collection)
    if ctx.created is not None:
        return Found(ctx.created, f"created by {ctx.created_by}")
    return None


def no_id(ctx: CheckupContext, operation: Operation) -> tuple[str, str]:
    """Why there is no id for ``operation``, from what was seen, and what to do."""
    collection = operation.collection
    seen = {c.operation: c.statuses for c in ctx.report.checked}
    creates = [o for o in ctx.plan if o.method == "POST" and not o.path_params and o.collection == collection]
    reads = _reads_of(ctx, collection)
    said = [f"{o.label} answered {tally(seen[o.label])}" for o in creates if o.label in seen]
    said += [f"{o.label} answered {tally(seen[o.label])}, no item with an id" for o in reads if o.label in seen]
    if not creates and not reads:
        said = [f"the document has no create (POST) and no list (GET) at {collection or '/'}"]
    return (
        f"no id to use in its path: {'; '.join(said) or 'neither its create nor its list was sent'}",
        "give the doctor what the create or the list needs (credentials, a valid body), or seed the database, "
        "so that a create answers with the new item (its id) or the list shows one",
    )


def _reads_of(ctx: CheckupContext, collection: str) -> list[Operation]:
    return [o for o in ctx.plan if is_collection_read(o) and o.collection == collection and not o.unsendable]
