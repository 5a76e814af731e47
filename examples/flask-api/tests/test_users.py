"""/user/* routes without in-app caching."""

from conftest import create_user, user_payload


def test_create_user_returns_user_without_password(client):
    resp = client.post("/user/create_user/", json=user_payload("alice"))
    assert resp.status_code == 201
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert body["nick_name"] == "alice"
    assert body["email"] == "alice@example.com"
    assert isinstance(body["id"], int)
    assert not any("password" in key for key in body)


def test_create_user_duplicate_nick_is_409(client):
    create_user(client, "alice")
    resp = client.post("/user/create_user/", json=user_payload("alice", name="Other"))
    assert resp.status_code == 409
    assert "error" in resp.get_json()


def test_create_user_missing_fields_is_400(client):
    payload = user_payload("alice")
    del payload["email"], payload["password"]
    resp = client.post("/user/create_user/", json=payload)
    assert resp.status_code == 400
    assert "email" in resp.get_json()["error"] and "password" in resp.get_json()["error"]


def test_create_user_without_json_is_400(client):
    resp = client.post("/user/create_user/", data="not json")
    assert resp.status_code == 400
    assert resp.mimetype == "application/json"


def test_show_all_user(client):
    assert client.get("/user/show_all_user/").get_json() == []
    create_user(client, "alice")
    create_user(client, "bob")
    resp = client.get("/user/show_all_user/")
    assert resp.status_code == 200
    assert [u["nick_name"] for u in resp.get_json()] == ["alice", "bob"]
    assert all("password" not in str(u) for u in resp.get_json())


def test_show_one_user(client):
    create_user(client, "alice")
    create_user(client, "bob")
    resp = client.post("/user/show_one_user/", json={"nick_name": "bob"})
    assert resp.status_code == 200
    assert resp.get_json()["nick_name"] == "bob"
    resp = client.post("/user/show_one_user/", json={"nick_name": "alice"})
    assert resp.get_json()["nick_name"] == "alice"


def test_show_one_user_unknown_is_404_and_missing_nick_is_400(client):
    assert client.post("/user/show_one_user/", json={"nick_name": "ghost"}).status_code == 404
    assert client.post("/user/show_one_user/", json={}).status_code == 400


def test_edit_user(client):
    create_user(client, "alice")
    resp = client.put("/user/edit_user/", json={"nick_name": "alice", "name": "Alice B", "email": "a@b.c"})
    assert resp.status_code == 200
    assert resp.get_json()["name"] == "Alice B"
    shown = client.post("/user/show_one_user/", json={"nick_name": "alice"}).get_json()
    assert (shown["name"], shown["email"]) == ("Alice B", "a@b.c")


def test_edit_user_errors(client):
    create_user(client, "alice")
    assert client.put("/user/edit_user/", json={"nick_name": "ghost", "name": "x"}).status_code == 404
    assert client.put("/user/edit_user/", json={"nick_name": "alice"}).status_code == 400
    assert client.put("/user/edit_user/", json={"nick_name": "alice", "name": ""}).status_code == 400


def test_edit_password(client):
    create_user(client, "alice")
    change = {"nick_name": "alice", "password": "pw-alice", "new_password": "s3cret"}
    assert client.put("/user/edit_password/", json=change).status_code == 200
    # The old password no longer works; the new one does.
    assert client.put("/user/edit_password/", json=change).status_code == 401
    back = {"nick_name": "alice", "password": "s3cret", "new_password": "pw-alice"}
    assert client.put("/user/edit_password/", json=back).status_code == 200


def test_edit_password_errors(client):
    create_user(client, "alice")
    wrong = {"nick_name": "alice", "password": "nope", "new_password": "x"}
    assert client.put("/user/edit_password/", json=wrong).status_code == 401
    ghost = {"nick_name": "ghost", "password": "x", "new_password": "y"}
    assert client.put("/user/edit_password/", json=ghost).status_code == 404
    assert client.put("/user/edit_password/", json={"nick_name": "alice"}).status_code == 400


def test_delete_user(client):
    create_user(client, "alice")
    resp = client.delete("/user/delete_user/", json={"nick_name": "alice"})
    assert resp.status_code == 200
    assert client.post("/user/show_one_user/", json={"nick_name": "alice"}).status_code == 404
    assert client.delete("/user/delete_user/", json={"nick_name": "alice"}).status_code == 404


def test_unknown_route_and_method_are_json(client):
    resp = client.get("/user/nope/")
    assert resp.status_code == 404 and resp.mimetype == "application/json"
    resp = client.get("/user/show_one_user/")
    assert resp.status_code == 405 and resp.mimetype == "application/json"
