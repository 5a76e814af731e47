"""/user/* routes. Read routes carry the reference's in-app cache decorator."""

from flask import Blueprint, jsonify
from sqlalchemy.exc import IntegrityError

from .extensions import cache, db
from .http import error, json_body, require_str
from .models import User

bp = Blueprint("user", __name__, url_prefix="/user")

CREATE_FIELDS = ("nick_name", "name", "password", *User.EDITABLE)


def find_user(data: dict) -> User:
    """The user named by the body's nick_name: 400 if absent, 404 if unknown."""
    require_str(data, "nick_name")
    user = db.session.execute(
        db.select(User).filter_by(nick_name=data["nick_name"])
    ).scalar_one_or_none()
    if user is None:
        error(404, f"user {data['nick_name']!r} not found")
    return user


@bp.post("/create_user/")
def create_user():
    data = json_body()
    require_str(data, *CREATE_FIELDS)
    if db.session.execute(db.select(User.id).filter_by(nick_name=data["nick_name"])).first():
        error(409, f"user {data['nick_name']!r} already exists")
    user = User(nick_name=data["nick_name"], **{f: data[f] for f in User.EDITABLE})
    user.set_password(data["password"])
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # lost a race with a concurrent create
        db.session.rollback()
        error(409, f"user {data['nick_name']!r} already exists")
    return jsonify(user.to_dict()), 201


# Reference quirk kept on purpose: query_string=True keys on path + query only,
# so every caller gets whatever the first caller got for 30 s.
@bp.get("/show_all_user/")
@cache.cached(timeout=30, query_string=True)
def show_all_user():
    users = db.session.execute(db.select(User).order_by(User.id)).scalars()
    return jsonify([u.to_dict() for u in users])


# A read done with POST, as the reference does. With flask-caching on, the body
# is not part of the key: user B gets user A's cached record.
@bp.post("/show_one_user/")
@cache.cached(timeout=30, query_string=True)
def show_one_user():
    return jsonify(find_user(json_body()).to_dict())


@bp.put("/edit_user/")
def edit_user():
    data = json_body()
    user = find_user(data)
    changes = {f: data[f] for f in User.EDITABLE if f in data}
    if not changes:
        error(400, "nothing to change; editable fields: " + ", ".join(User.EDITABLE))
    require_str(changes, *changes)
    for field, value in changes.items():
        setattr(user, field, value)
    db.session.commit()
    return jsonify(user.to_dict())


@bp.put("/edit_password/")
def edit_password():
    data = json_body()
    require_str(data, "nick_name", "password", "new_password")
    user = find_user(data)
    if not user.check_password(data["password"]):
        error(401, "wrong password")
    user.set_password(data["new_password"])
    db.session.commit()
    return jsonify(message="password updated", nick_name=user.nick_name)


@bp.delete("/delete_user/")
def delete_user():
    user = find_user(json_body())
    db.session.delete(user)  # cascades to the user's orders
    db.session.commit()
    return jsonify(message="user deleted", nick_name=user.nick_name)
