"""Names the runner and the in-server harness share. Kept apart so the runner need not import the harness."""

PROBE_PREFIX = "/_lab/"
TARGET_ENV = "FAULTLAB_TARGET"  # module:attribute of the ASGI app to serve
ENGINE_ENV = "FAULTLAB_ENGINE"  # module:attribute of its engine, when it cannot be found
ONLY_DB_ENV = "FAULTLAB_ONLY_DB"  # BACKEND:DATABASE, the one database the app may connect to (inside.identity)
RUN_DIR_ENV = "FAULTLAB_RUN_DIR"  # where the harness writes what it observes
STATS_DIR = "stats"  # <run dir>/stats/<pid>.stats: shared-memory counters (faultlab.inside.stats)
ERRORS_DIR = "errors"  # <run dir>/errors/<pid>.jsonl: exceptions that escaped the app
STEP_HEADER = b"x-faultlab-step"  # "<run>:<step number>" on every request the lab sends
LIFELINE_ENV = "FAULTLAB_LIFELINE"  # the descriptor a server watches: end-of-file means the lab is gone
APP_SETTINGS = frozenset({"DATABASE_URL", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT"})  # the lab's to set
INSIDE_ENV = "FAULTLAB_INSIDE"  # module:function,...: plugins' parts the harness installs (inside.extensions)
SITES_ENV = "FAULTLAB_SITES"  # "1": note where connections are checked out and lazy loads read (the doctor)
