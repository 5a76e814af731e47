"""seed.py fills the database deterministically and is idempotent."""

from api.extensions import db
from api.models import Order, User
from seed import seed


def counts():
    return (db.session.scalar(db.select(db.func.count(User.id))),
            db.session.scalar(db.select(db.func.count(Order.order_id))))


def test_seed_is_deterministic_and_idempotent(client):
    with client.application.app_context():
        assert seed(5, 2) == (5, 10)
        assert counts() == (5, 10)
        assert seed(5, 2) == (0, 0)
        assert counts() == (5, 10)
        assert seed(6, 3) == (1, 8)
        assert counts() == (6, 18)
    users = client.get("/user/show_all_user/").get_json()
    assert [u["nick_name"] for u in users] == [f"user{i:04d}" for i in range(1, 7)]
    change = {"nick_name": "user0003", "password": "password", "new_password": "x"}
    assert client.put("/user/edit_password/", json=change).status_code == 200
