"""Fixtures: a fresh app on a temporary SQLite file per test, and a private redis-server."""

import os
import signal
import socket
import subprocess
import time

import pytest
import redis

from api import create_app

REDIS_SERVER = "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A redis-server of our own on a free loopback port, SIGKILLed at the end."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip(f"{REDIS_SERVER} not installed")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.fixture
def make_client(monkeypatch, tmp_path):
    """Build a test client for a given CACHE mode, on a temporary SQLite file."""

    def make(cache: str = "none", redis_url: str | None = None):
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("SQLITE_PATH", str(tmp_path / "test.db"))
        monkeypatch.setenv("CACHE", cache)
        if redis_url:
            monkeypatch.setenv("CACHE_REDIS_URL", redis_url)
        return create_app().test_client()

    return make


@pytest.fixture
def client(make_client):
    """No in-app caching (CACHE=none)."""
    return make_client()


@pytest.fixture
def cached_client(make_client, redis_url):
    """CACHE=flask-caching against the private redis-server, emptied first."""
    redis.Redis.from_url(redis_url).flushdb()
    return make_client("flask-caching", redis_url)


def user_payload(nick: str, **overrides) -> dict:
    data = {
        "nick_name": nick,
        "name": f"Name of {nick}",
        "password": f"pw-{nick}",
        "cpf": "12345678901",
        "email": f"{nick}@example.com",
        "phone_number": "+55 11 912345678",
    }
    data.update(overrides)
    return data


def create_user(client, nick: str, **overrides) -> dict:
    resp = client.post("/user/create_user/", json=user_payload(nick, **overrides))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def create_order(client, nick: str, description: str = "widget", quantity=2, price=9.5) -> dict:
    resp = client.post(
        "/order/create_order/",
        json={"nick_name": nick, "item_description": description,
              "item_quantity": quantity, "item_price": price},
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()
