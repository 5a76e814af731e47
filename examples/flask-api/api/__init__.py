"""Reference users/orders API: a Flask app factory configured from the environment.

Environment:
  DATABASE_URL     postgresql://user:pass@host:port/db; when unset, SQLite is used
  SQLITE_PATH      SQLite file (default: <this example>/instance/app.db), created on start
  CACHE            "flask-caching" turns on the reference's in-app Redis cache; "none" (default) = off
  CACHE_REDIS_URL  Redis for CACHE=flask-caching (default redis://127.0.0.1:6379/0)
"""

import os
import sqlite3
import time

from flask import Flask, jsonify
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException

from .extensions import cache, db

EXAMPLE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SQLITE_PATH = os.path.join(EXAMPLE_DIR, "instance", "app.db")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def database_uri() -> str:
    """SQLAlchemy URI from DATABASE_URL (PostgreSQL) or SQLITE_PATH."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        # Use psycopg2 (SQLAlchemy 2.1 defaults plain postgresql:// to psycopg 3);
        # also accept the Heroku-style postgres:// alias. An explicit driver is kept.
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                url = "postgresql+psycopg2://" + url[len(scheme):]
        return url
    path = os.path.abspath(os.environ.get("SQLITE_PATH") or DEFAULT_SQLITE_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return "sqlite:///" + path


def cache_config() -> dict:
    """Flask-Caching settings for the CACHE env var."""
    mode = os.environ.get("CACHE", "none").strip().lower()
    if mode == "flask-caching":
        # Exactly the reference's setup: RedisCache, keys built from path + query string.
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": os.environ.get("CACHE_REDIS_URL") or DEFAULT_REDIS_URL,
        }
    if mode in ("", "none", "off"):
        return {"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True}
    raise ValueError(f"CACHE must be 'flask-caching' or 'none', not {mode!r}")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_conn, _record):
    """SQLite only: WAL + busy timeout so several gunicorn workers can write."""
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def _create_tables(app: Flask) -> None:
    """create_all, tolerating the race when several workers start at once."""
    with app.app_context():
        for attempt in range(5):
            try:
                db.create_all()
                break
            except (exc.OperationalError, exc.ProgrammingError, exc.IntegrityError):
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        # Don't carry pooled connections across a fork (gunicorn --preload).
        db.engine.dispose()


def create_app() -> Flask:
    app = Flask(__name__, instance_path=os.path.join(EXAMPLE_DIR, "instance"))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_uri(),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        **cache_config(),
    )
    db.init_app(app)
    cache.init_app(app)

    from .orders import bp as orders_bp
    from .users import bp as users_bp

    app.register_blueprint(users_bp)
    app.register_blueprint(orders_bp)

    @app.errorhandler(HTTPException)
    def _json_http_error(e: HTTPException):
        """Every error is JSON too (404 for unknown paths, 405, ...)."""
        if e.response is not None:  # already a JSON response from api.http.error()
            return e.response
        return jsonify(error=e.description), e.code

    _create_tables(app)
    return app
