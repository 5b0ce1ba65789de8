"""What does noting *where* cost (``faultlab.inside.sites``)? The harness walks the stack at every checkout
and every ORM select; this times a request's worth of database work with and without those notes.

    python benchmarks/bench_sites.py [--loops 5000] [--rounds 5] [--depth 40]

One unit is what a route does: open a session on a SQLite file, read 20 rows through the ORM, close it (one
checkout, one check-in, one ORM select). It runs ``--depth`` frames deep (a served request's stack is 30-50
frames: uvicorn, starlette, anyio, FastAPI), alternately without and with the listeners the harness adds
(``checkout``/``checkin`` to ``CheckoutSites``, ``do_orm_execute`` to ``LazyLoads``). Prints the median time
per unit of each kind over the rounds and the difference: the notes' cost per request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faultlab.inside.loading import RequestLoads
from faultlab.inside.sites import CheckoutSites, LazyLoads


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def _deep(depth: int, work: Callable[[], None]) -> None:
    if depth:
        _deep(depth - 1, work)
    else:
        work()


def _time(engine: Any, loops: int, depth: int) -> float:
    def unit() -> None:
        with Session(engine) as session:
            list(session.scalars(select(Row)))

    started = time.perf_counter()
    for _ in range(loops):
        _deep(depth, unit)
    return (time.perf_counter() - started) / loops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--depth", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/bench.db")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all(Row(id=i, name=f"row {i}") for i in range(20))
            session.commit()
        sites, lazy, loads = CheckoutSites(), LazyLoads(), RequestLoads()
        loads.begin()  # one request's notes, as the harness opens for each request

        def checkout(dbapi: Any, record: Any, proxy: Any) -> None:
            sites.checkout(id(record))

        def checkin(dbapi: Any, record: Any) -> None:
            sites.checkin(id(record))

        without, with_notes = [], []
        _time(engine, args.loops // 10, args.depth)  # warm up
        for _ in range(args.rounds):
            without.append(_time(engine, args.loops, args.depth))
            event.listen(engine, "checkout", checkout)
            event.listen(engine, "checkin", checkin)
            event.listen(Session, "do_orm_execute", lazy.executed)
            event.listen(Session, "do_orm_execute", loads.executed)
            with_notes.append(_time(engine, args.loops, args.depth))
            event.remove(engine, "checkout", checkout)
            event.remove(engine, "checkin", checkin)
            event.remove(Session, "do_orm_execute", lazy.executed)
            event.remove(Session, "do_orm_execute", loads.executed)
        engine.dispose()
    a, b = statistics.median(without), statistics.median(with_notes)
    print(f"per unit (session, 20-row ORM select, close; {args.depth} frames deep), median of {args.rounds} rounds:")
    print(f"  without the notes: {a:.1f} µs   with them: {b:.1f} µs   cost: {b - a:+.1f} µs ({(b - a) / a:+.1%})")


if __name__ == "__main__":
    main()
