"""CACHE=flask-caching reproduces the reference's in-app caching, bugs included.

@cache.cached(timeout=30, query_string=True) keys on path + query string only, so
bodies are ignored and writes never invalidate. These tests pin that behaviour down:
it is what the cache-proxy is compared against.
"""

import redis
from conftest import create_order, create_user


def test_responses_are_stored_in_redis(cached_client, redis_url):
    create_user(cached_client, "alice")
    assert cached_client.get("/user/show_all_user/").status_code == 200
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    assert any(k.startswith("flask_cache_view//user/show_all_user/") for k in keys), keys


def test_show_one_user_gives_user_b_the_record_of_user_a(cached_client):
    create_user(cached_client, "alice")
    create_user(cached_client, "bob")
    first = cached_client.post("/user/show_one_user/", json={"nick_name": "alice"})
    assert first.get_json()["nick_name"] == "alice"
    second = cached_client.post("/user/show_one_user/", json={"nick_name": "bob"})
    assert second.status_code == 200
    assert second.get_json()["nick_name"] == "alice"  # BUG: bob asked, alice came back


def test_show_one_user_without_cache_is_correct(client):
    """Control: the same sequence with CACHE=none."""
    create_user(client, "alice")
    create_user(client, "bob")
    client.post("/user/show_one_user/", json={"nick_name": "alice"})
    assert client.post("/user/show_one_user/", json={"nick_name": "bob"}).get_json()["nick_name"] == "bob"


def test_a_cached_404_hides_existing_users(cached_client):
    create_user(cached_client, "alice")
    assert cached_client.post("/user/show_one_user/", json={"nick_name": "ghost"}).status_code == 404
    # BUG: the 404 was cached under the same key, so alice is "not found" for 30 s.
    assert cached_client.post("/user/show_one_user/", json={"nick_name": "alice"}).status_code == 404


def test_list_per_users_returns_the_first_bodys_answer(cached_client):
    create_user(cached_client, "alice")
    create_user(cached_client, "bob")
    a = create_order(cached_client, "alice", "for alice")
    create_order(cached_client, "bob", "for bob")
    assert cached_client.get("/order/list_per_users/", json={"nick_name": "alice"}).get_json() == [a]
    resp = cached_client.get("/order/list_per_users/", json={"nick_name": "bob"})
    assert resp.get_json() == [a]  # BUG: bob's request answered with alice's orders


def test_show_order_returns_the_first_bodys_answer(cached_client):
    create_user(cached_client, "alice")
    a = create_order(cached_client, "alice", "first")
    b = create_order(cached_client, "alice", "second")
    assert cached_client.get("/order/show_order/", json={"order_id": a["order_id"]}).get_json() == a
    resp = cached_client.get("/order/show_order/", json={"order_id": b["order_id"]})
    assert resp.get_json() == a  # BUG


def test_writes_do_not_invalidate(cached_client):
    create_user(cached_client, "alice")
    assert len(cached_client.get("/user/show_all_user/").get_json()) == 1
    create_user(cached_client, "bob")
    assert len(cached_client.get("/user/show_all_user/").get_json()) == 1  # stale: bob missing
    create_order(cached_client, "alice")
    cached_client.get("/order/list_all_orders/")
    create_order(cached_client, "bob")
    assert len(cached_client.get("/order/list_all_orders/").get_json()) == 1  # stale
    # The query string is part of the key, so a different one misses the cache.
    assert len(cached_client.get("/user/show_all_user/?fresh=1").get_json()) == 2
