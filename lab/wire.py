"""Names the runner and the in-server harness share. Kept apart so the runner need not import the harness."""

PROBE_PREFIX = "/_lab/"
TARGET_ENV = "FAULTLAB_TARGET"
