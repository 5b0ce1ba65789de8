"""The pool may open more connections than the database allows the app.

SQLAlchemy's default pool keeps 5 connections and opens up to 10 more under load: 15 per process. The
database gives the app fewer (a role's or a database's ``CONNECTION LIMIT``, or ``max_connections`` shared
by every worker and every other service). Under a burst the pool opens connection after connection, and
PostgreSQL refuses those beyond the limit at once: ``too many connections for role``, a fast 500, not a
wait. The fix is arithmetic: ``workers × (pool_size + max_overflow)`` within the budget.
"""

from app.database import make_engine
from app.main import create_app

app = create_app(engine=make_engine(pool_size=5, max_overflow=10))  # BUG: up to 15; the budget is 5
