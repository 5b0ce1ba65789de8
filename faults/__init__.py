"""Fault variants: each module is the correct app (``app``) with exactly one thing changed.

A module exposes ``app`` (the ASGI app to serve). Its docstring says what the bug is and why it hurts;
its code is the whole bug.
"""
