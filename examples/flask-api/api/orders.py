"""/order/* routes. Read routes carry the reference's in-app cache decorator."""

from flask import Blueprint, jsonify

from .extensions import cache, db
from .http import error, json_body, order_id, positive_int, price, require_str
from .models import Order
from .users import find_user

bp = Blueprint("order", __name__, url_prefix="/order")


def find_order(data: dict) -> Order:
    """The order named by the body's order_id: 400 if absent/invalid, 404 if unknown."""
    oid = order_id(data)
    order = db.session.get(Order, oid)
    if order is None:
        error(404, f"order {oid} not found")
    return order


@bp.post("/create_order/")
def create_order():
    data = json_body()
    require_str(data, "nick_name", "item_description")
    quantity = positive_int(data.get("item_quantity"), "item_quantity")
    item_price = price(data.get("item_price"))
    user = find_user(data)
    order = Order(
        user=user,
        item_description=data["item_description"],
        item_quantity=quantity,
        item_price=item_price,
    )
    db.session.add(order)
    db.session.commit()
    return jsonify(order.to_dict()), 201


@bp.get("/list_all_orders/")
@cache.cached(timeout=30, query_string=True)
def list_all_orders():
    orders = db.session.execute(db.select(Order).order_by(Order.order_id)).scalars()
    return jsonify([o.to_dict() for o in orders])


# GET with a JSON body, as the reference does. With flask-caching on, the body
# is not part of the key: every user gets the first caller's orders.
@bp.get("/list_per_users/")
@cache.cached(timeout=30, query_string=True)
def list_per_users():
    user = find_user(json_body())
    return jsonify([o.to_dict() for o in user.orders])


# GET with a JSON body {"order_id": ...}; same caching quirk as list_per_users.
@bp.get("/show_order/")
@cache.cached(timeout=30, query_string=True)
def show_order():
    return jsonify(find_order(json_body()).to_dict())


@bp.put("/update_order/")
def update_order():
    data = json_body()
    order = find_order(data)
    changes = {}
    if "item_description" in data:
        require_str(data, "item_description")
        changes["item_description"] = data["item_description"]
    if "item_quantity" in data:
        changes["item_quantity"] = positive_int(data["item_quantity"], "item_quantity")
    if "item_price" in data:
        changes["item_price"] = price(data["item_price"])
    if not changes:
        error(400, "nothing to change; editable fields: item_description, item_quantity, item_price")
    for field, value in changes.items():
        setattr(order, field, value)
    db.session.commit()
    return jsonify(order.to_dict())


@bp.delete("/delete_order/")
def delete_order():
    order = find_order(json_body())
    oid = order.order_id
    db.session.delete(order)
    db.session.commit()
    return jsonify(message="order deleted", order_id=oid)
