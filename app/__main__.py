"""``python -m app``: serve the correct todo API on loopback (``--help`` for options)."""

from __future__ import annotations

import argparse
import errno
import gc
import importlib
import ipaddress
import os
import socket
import sys

LOOPBACK_HINT = "use --public to listen on a non-loopback address"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve the todo API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000; 0 picks one)")
    parser.add_argument("--db", metavar="URL", help="database URL (default: $DATABASE_URL, else ./todos.db)")
    parser.add_argument("--public", action="store_true", help="allow a non-loopback --host")
    parser.add_argument(
        "--async", dest="use_async", action="store_true", help="serve the AsyncSession app (aiosqlite, asyncpg)"
    )
    args = parser.parse_args(argv)
    if not args.public and not _is_loopback(args.host):
        parser.error(f"--host {args.host} is not a loopback address; {LOOPBACK_HINT}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is out of range 0-65535")
    return args


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections
    # whose socket says TCP, and accepted sockets inherit the listener's. With Nagle on, a response's body
    # waited for the client's delayed ACK of its headers: ~40 ms a request (README "Performance").
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _tune_garbage_collector() -> None:
    """Tune the cyclic garbage collector for a server (README "Performance": it took a third of a list's time).

    The ~100,000 objects the imports made (modules, classes, routes, schemas) live as long as the process:
    frozen, no collection walks them again. A list of 100 todos with their tags makes ~3,400 ORM and response
    objects: with the default threshold (a young collection every 700 new objects) the collector examines
    them several times while the request still uses them and moves them to the older generations, whose
    full collections then come every few dozen requests. Every 7,000 new objects: fewer collections, fewer
    objects still in use when one runs.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.db:
        os.environ["DATABASE_URL"] = args.db
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"error: port {args.port} on {args.host} is already in use; "
                f"pick another with --port (e.g. --port {args.port + 1}) or stop what is using it",
                file=sys.stderr,
            )
            return 2
        print(f"error: cannot bind {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2

    # Imported late so that --help and a busy port answer at once.
    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        print(
            f"error: this Python lacks the app's dependencies (no module {missing.name!r}); set up with: "
            "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python -m app",
            file=sys.stderr,
        )
        return 2
    from sqlalchemy import make_url

    from app import settings
    from app.startup_check import database_problem

    if problem := database_problem():
        sock.close()
        print(f"error: {problem}", file=sys.stderr)
        return 2
    shown = make_url(settings.database_url()).render_as_string(hide_password=True)
    host = f"[{args.host}]" if ":" in args.host else args.host
    module = "app.async_main" if args.use_async else "app.main"
    if args.use_async:
        from app.async_database import async_url

        shown = async_url(shown).render_as_string(hide_password=True)
    print(f"todo API: database {shown}", flush=True)
    print(f"todo API: http://{host}:{sock.getsockname()[1]}/docs to try it", flush=True)
    importlib.import_module(module)  # imported before the server starts, so that its objects are frozen next

    _tune_garbage_collector()
    config = uvicorn.Config(f"{module}:app", log_level="info")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
