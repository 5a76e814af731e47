"""Fill the database with deterministic users and orders; safe to re-run.

    python examples/flask-api/seed.py --users 300 --orders-per-user 3

Users are user0001, user0002, ...; every seeded user's password is "password"
(hashed once and shared, so seeding thousands of users stays fast). Re-running
only adds what is missing: users that don't exist yet and, per user, orders up
to --orders-per-user. Uses the same DATABASE_URL / SQLITE_PATH as the app.
"""

import argparse
import os
import sys

from werkzeug.security import generate_password_hash

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from api import create_app  # noqa: E402
from api.extensions import db  # noqa: E402
from api.models import Order, User  # noqa: E402

SEED_PASSWORD = "password"


def nick(i: int) -> str:
    return f"user{i:04d}"


def seed(users: int, orders_per_user: int) -> tuple[int, int]:
    """Seed inside the current app context. Returns (users added, orders added)."""
    existing = set(db.session.execute(db.select(User.nick_name)).scalars())
    password_hash = generate_password_hash(SEED_PASSWORD)
    added_users = 0
    for i in range(1, users + 1):
        if nick(i) in existing:
            continue
        db.session.add(
            User(
                nick_name=nick(i),
                name=f"User {i:04d}",
                password_hash=password_hash,
                cpf=f"{i:011d}",
                email=f"{nick(i)}@example.com",
                phone_number=f"+55 11 9{i:08d}",
            )
        )
        added_users += 1
    db.session.commit()

    counts = dict(
        db.session.execute(
            db.select(User.nick_name, db.func.count(Order.order_id))
            .outerjoin(Order)
            .group_by(User.nick_name)
        ).all()
    )
    by_nick = {u.nick_name: u for u in db.session.execute(db.select(User)).scalars()}
    added_orders = 0
    for i in range(1, users + 1):
        have = counts.get(nick(i), 0)
        if have >= orders_per_user:
            continue
        user = by_nick[nick(i)]
        for j in range(have + 1, orders_per_user + 1):
            db.session.add(
                Order(
                    user=user,
                    item_description=f"item {j} for {nick(i)}",
                    item_quantity=(i + j) % 5 + 1,
                    item_price=round(((i * 7 + j * 13) % 1000) / 10 + 0.99, 2),
                )
            )
            added_orders += 1
    db.session.commit()
    return added_users, added_orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--orders-per-user", type=int, default=3)
    args = parser.parse_args()
    app = create_app()
    with app.app_context():
        added_users, added_orders = seed(args.users, args.orders_per_user)
        total_users = db.session.scalar(db.select(db.func.count(User.id)))
        total_orders = db.session.scalar(db.select(db.func.count(Order.order_id)))
    print(
        f"seeded {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}: "
        f"+{added_users} users, +{added_orders} orders "
        f"(now {total_users} users, {total_orders} orders)"
    )


if __name__ == "__main__":
    main()
