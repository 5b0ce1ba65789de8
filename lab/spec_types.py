"""Small value types shared by the experiment schema and the plugins' parameters."""

RELATIVE_DIR = r"^[a-z0-9_-]+(/[a-z0-9_-]+)*$"  # a directory inside the run's temp dir: no "..", no "/"
