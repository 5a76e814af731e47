"""Extension singletons shared by the blueprints; bound to an app in create_app()."""

from flask_caching import Cache
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()

#: In-app cache. With CACHE=flask-caching it is the Redis backend the reference
#: used; otherwise it is Flask-Caching's NullCache, which stores and finds nothing.
cache = Cache()
