"""The database URL is a relative path, ``sqlite:///./todos.db``, as in many tutorials.

SQLite resolves ``./todos.db`` against the server's *working directory*, not against the code. Start the
server from another directory (a new deploy script, a systemd unit, an IDE's run button) and it opens,
and creates, a different, empty ``todos.db`` there: every todo seems to have vanished, while the old file
sits untouched where the server was started before.
"""

from app.database import make_engine
from app.main import create_app

app = create_app(engine=make_engine("sqlite:///./todos.db"))  # BUG: relative to the working directory
