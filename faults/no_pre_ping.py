"""The engine hands out pooled connections without checking that they still work (``pool_pre_ping=False``).

A pooled connection is a socket to the database server. When the server restarts, fails over, or a proxy
or firewall drops idle connections, the socket is dead but the pool does not know: the next request that
gets it fails with ``server closed the connection unexpectedly`` or ``terminating connection due to
administrator command``. SQLAlchemy then throws the pool's connections away, so the request after it
works, and the failure looks random. ``pool_pre_ping=True`` tests each connection as it is checked out.
"""

from app.database import make_engine
from app.main import create_app

app = create_app(engine=make_engine(pool_pre_ping=False))  # BUG: no pre-ping: dead connections are handed out
