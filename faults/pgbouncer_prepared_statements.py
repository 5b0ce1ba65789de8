"""asyncpg behind PgBouncer in transaction mode: a prepared statement meets a server session that never saw it.

SQLAlchemy's asyncpg dialect prepares every statement (``connection.prepare()``) and keeps it in a cache of
its connection (100 statements), and asyncpg names each one ``__asyncpg_stmt_1__``, ``_2__``... in the order
its connection made them. PostgreSQL keeps a prepared statement in the server session that prepared it.
Behind PgBouncer in transaction mode, the app's connection is lent a server session for one transaction at a
time: a statement prepared in one transaction is executed in a later one on another server session, which
answers ``prepared statement "__asyncpg_stmt_7__" does not exist``; or it is prepared under a name that
another client connection already took there (``DuplicatePreparedStatementError``). PgBouncer 1.21 and later
can track protocol-level prepared statements (``max_prepared_statements``); 1.18 (Debian 12) cannot.

The fixed app (``fixed_app``) does what SQLAlchemy's asyncpg documentation says for PgBouncer: no cache of
prepared statements (the dialect's and asyncpg's own), so each one is prepared and used in one transaction,
and a name no other connection can take.
"""

from uuid import uuid4

from app.async_database import make_async_engine
from app.async_main import create_async_app

app = create_async_app()  # BUG: the correct async app as written, its DATABASE_URL pointed at PgBouncer


def unique_name() -> str:
    """A prepared statement's name that no other client connection sharing the server session can have taken."""
    return f"__asyncpg_{uuid4()}__"


fixed_app = create_async_app(
    engine=make_async_engine(
        connect_args={
            "prepared_statement_cache_size": 0,  # the fix: SQLAlchemy's cache off, each statement used where prepared
            "statement_cache_size": 0,  # asyncpg's own cache, off too
            "prepared_statement_name_func": unique_name,
        }
    )
)
