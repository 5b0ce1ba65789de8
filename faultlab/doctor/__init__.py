"""``run_lab.py doctor``: the lab's witnesses on your own FastAPI + SQLAlchemy app."""
