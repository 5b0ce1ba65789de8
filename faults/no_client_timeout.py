"""The database stops answering (paused, a frozen VM, a network partition) and every request waits for it.

A paused server is not a down server: its sockets stay open and the kernel accepts new connections, but
nothing answers. Nothing the database enforces helps (``statement_timeout`` runs in the stopped server);
TCP keepalives and ``tcp_user_timeout`` do not fire either, because the server's kernel still acknowledges
every byte. Without a bound of the client's own, each request waits for as long as the database is gone,
holding its connection. The fixed app (``fixed_app``) bounds every wait in the driver: asyncpg's
``timeout`` (connecting) and ``command_timeout`` (each statement, the pool's pre-ping included), and the
pool's ``pool_timeout``: requests fail after 2 s (the pre-ping, then one new connection) instead of hanging.
"""

from app.async_database import make_async_engine
from app.async_main import create_async_app

WAIT_S = 1  # how long each wait for the database may last: choose it above your slowest legitimate query

app = create_async_app()  # BUG: the correct async app as written: no bound of the client's own on a wait

fixed_app = create_async_app(
    # the fix: asyncpg gives up on a connect or a statement after WAIT_S, whatever the server does
    engine=make_async_engine(connect_args={"timeout": WAIT_S, "command_timeout": WAIT_S}, pool_timeout=WAIT_S)
)
