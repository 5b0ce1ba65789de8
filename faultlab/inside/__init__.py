"""What runs inside the served process: the harness around the app (counters, the error log, the statement
log, the lab's routes) and the server's entry point. Imports nothing else of faultlab: the app's process stays
the app's."""
