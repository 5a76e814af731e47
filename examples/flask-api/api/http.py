"""Small request/response helpers shared by the blueprints."""

import math

from flask import abort, jsonify, make_response, request


def error(status: int, message: str):
    """Abort the request with a JSON body {"error": message}."""
    abort(make_response(jsonify(error=message), status))


def json_body() -> dict:
    """The request's JSON object, whatever the method or Content-Type (GET bodies too).

    Like the reference, uses get_json(force=True, silent=True); a missing or
    non-object body is a 400.
    """
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        error(400, "request body must be a JSON object")
    return data


def require_str(data: dict, *fields: str) -> None:
    """400 unless every field is present as a non-empty string."""
    missing = [f for f in fields if not isinstance(data.get(f), str) or not data[f].strip()]
    if missing:
        error(400, "missing or invalid fields: " + ", ".join(missing))


def positive_int(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        error(400, f"{field} must be a positive integer")
    return value


def price(value, field: str = "item_price") -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        error(400, f"{field} must be a non-negative number")
    return float(value)


def order_id(data: dict) -> int:
    """The body's order_id as an int (a numeric string is accepted), else 400."""
    value = data.get("order_id")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return positive_int(value, "order_id")
