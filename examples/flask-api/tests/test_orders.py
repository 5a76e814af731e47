"""/order/* routes without in-app caching (GET routes read a JSON body)."""

import pytest
from conftest import create_order, create_user


@pytest.fixture
def users(client):
    create_user(client, "alice")
    create_user(client, "bob")


def test_create_order(client, users):
    order = create_order(client, "alice", "book", 3, 12.5)
    assert isinstance(order["order_id"], int)
    assert order == {"order_id": order["order_id"], "nick_name": "alice",
                     "item_description": "book", "item_quantity": 3, "item_price": 12.5}


def test_create_order_unknown_user_is_404(client, users):
    resp = client.post("/order/create_order/", json={
        "nick_name": "ghost", "item_description": "x", "item_quantity": 1, "item_price": 1})
    assert resp.status_code == 404


@pytest.mark.parametrize("bad", [
    {"item_description": "x", "item_quantity": 1},                      # no price
    {"item_description": "x", "item_quantity": 0, "item_price": 1},     # quantity not positive
    {"item_description": "x", "item_quantity": "2", "item_price": 1},   # quantity not an int
    {"item_description": "x", "item_quantity": 1, "item_price": -1},    # negative price
    {"item_description": "", "item_quantity": 1, "item_price": 1},      # empty description
])
def test_create_order_bad_input_is_400(client, users, bad):
    resp = client.post("/order/create_order/", json={"nick_name": "alice", **bad})
    assert resp.status_code == 400
    assert "error" in resp.get_json()


def test_list_all_orders(client, users):
    assert client.get("/order/list_all_orders/").get_json() == []
    a = create_order(client, "alice")
    b = create_order(client, "bob")
    resp = client.get("/order/list_all_orders/")
    assert resp.status_code == 200
    assert resp.get_json() == [a, b]


def test_list_per_users_reads_get_body(client, users):
    a1 = create_order(client, "alice", "a1")
    b1 = create_order(client, "bob", "b1")
    a2 = create_order(client, "alice", "a2")
    assert client.get("/order/list_per_users/", json={"nick_name": "alice"}).get_json() == [a1, a2]
    assert client.get("/order/list_per_users/", json={"nick_name": "bob"}).get_json() == [b1]
    # The body is read even without a JSON Content-Type (force=True).
    resp = client.get("/order/list_per_users/", data='{"nick_name": "bob"}')
    assert resp.get_json() == [b1]


def test_list_per_users_errors(client, users):
    assert client.get("/order/list_per_users/", json={"nick_name": "ghost"}).status_code == 404
    assert client.get("/order/list_per_users/").status_code == 400


def test_show_order_reads_get_body(client, users):
    a = create_order(client, "alice", "a")
    b = create_order(client, "bob", "b")
    assert client.get("/order/show_order/", json={"order_id": a["order_id"]}).get_json() == a
    assert client.get("/order/show_order/", json={"order_id": b["order_id"]}).get_json() == b


def test_show_order_errors(client, users):
    assert client.get("/order/show_order/", json={"order_id": 999}).status_code == 404
    assert client.get("/order/show_order/", json={"order_id": "abc"}).status_code == 400
    assert client.get("/order/show_order/", json={}).status_code == 400


def test_update_order(client, users):
    order = create_order(client, "alice", "old", 1, 1.0)
    resp = client.put("/order/update_order/", json={
        "order_id": order["order_id"], "item_description": "new", "item_quantity": 5})
    assert resp.status_code == 200
    updated = resp.get_json()
    assert (updated["item_description"], updated["item_quantity"], updated["item_price"]) == ("new", 5, 1.0)
    assert client.get("/order/show_order/", json={"order_id": order["order_id"]}).get_json() == updated


def test_update_order_errors(client, users):
    order = create_order(client, "alice")
    assert client.put("/order/update_order/", json={"order_id": 999, "item_quantity": 1}).status_code == 404
    assert client.put("/order/update_order/", json={"order_id": order["order_id"]}).status_code == 400
    bad = {"order_id": order["order_id"], "item_description": "changed", "item_price": "free"}
    assert client.put("/order/update_order/", json=bad).status_code == 400
    # A rejected update changes nothing.
    assert client.get("/order/show_order/", json={"order_id": order["order_id"]}).get_json() == order


def test_delete_order(client, users):
    order = create_order(client, "alice")
    resp = client.delete("/order/delete_order/", json={"order_id": order["order_id"]})
    assert resp.status_code == 200
    assert client.get("/order/show_order/", json={"order_id": order["order_id"]}).status_code == 404
    assert client.delete("/order/delete_order/", json={"order_id": order["order_id"]}).status_code == 404


def test_deleting_user_deletes_their_orders(client, users):
    create_order(client, "alice")
    b = create_order(client, "bob")
    assert client.delete("/user/delete_user/", json={"nick_name": "alice"}).status_code == 200
    assert client.get("/order/list_all_orders/").get_json() == [b]
