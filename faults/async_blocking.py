"""An ``async def`` route does synchronous database work, so it runs on the event loop and blocks it.

FastAPI runs a plain ``def`` route in a thread pool, and an ``async def`` route on the event loop itself,
trusting it to ``await`` whatever waits. SQLAlchemy's ``Session`` does not await: while the insert waits
for the database (here, for a write lock another connection holds), the loop can do nothing else. Every
other request, even a trivial one, waits with it: the server looks frozen, with no error anywhere.
"""

from fastapi import Request

from app.database import DbSession
from app.main import create_app, create_todo
from app.models import Todo
from app.schemas import TodoCreate


async def create_todo_on_the_loop(payload: TodoCreate, db: DbSession, request: Request) -> Todo:
    return create_todo(payload, db, request)  # BUG: a blocking call inside async def: the whole server waits for it


app = create_app(endpoints={create_todo: create_todo_on_the_loop})
