"""The registry's database session: SQLAlchemy over psycopg, one small engine per process.

The rest of the API reads through its psycopg pool (`api.deps.Conn`); the administration of the
registry writes through SQLModel sessions, so its rows are the models of `api.registry.models`.
The engine is made on first use (no lifespan hook needed) and kept for the process. A session
lasts one request: committed when the route returns, before the answer is sent, so a refused
commit is answered as an error and never as a success; rolled back when the route fails. A
refusal of the database comes out of the session as psycopg's own error, which `api.errors`
answers 409/422 like anywhere else in the API.
"""

import atexit
from collections.abc import Iterator
from functools import cache
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from core.settings import platform_settings

POOL_SIZE, POOL_OVERFLOW = 2, 4  # administration is a handful of people; bursts (imports) may borrow more


@cache
def _engine(url: str) -> Engine:
    made = create_engine(make_url(url).set(drivername="postgresql+psycopg"), pool_size=POOL_SIZE,
                         max_overflow=POOL_OVERFLOW, pool_pre_ping=True,
                         connect_args={"application_name": "api-registry", "options": "-c jit=off"})
    atexit.register(made.dispose)  # its connections closed, not dropped, when the process ends
    return made


def engine() -> Engine:
    """The process's engine for the configured database (made on first use)."""
    return _engine(platform_settings().require_database_url())


def get_session() -> Iterator[Session]:
    """A session for one request: committed at its end, rolled back on any error."""
    with Session(engine()) as session:
        try:
            yield session
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            raise exc.orig or exc from exc  # psycopg's error: api.errors answers it 409/422


DbSession = Annotated[Session, Depends(get_session, scope="function")]
