"""Database models: users and their orders."""

from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db


class User(db.Model):
    __tablename__ = "users"

    id = db.Column(db.Integer, primary_key=True)
    nick_name = db.Column(db.String(80), unique=True, nullable=False, index=True)
    name = db.Column(db.String(200), nullable=False)
    password_hash = db.Column(db.String(256), nullable=False)
    cpf = db.Column(db.String(20), nullable=False)
    email = db.Column(db.String(200), nullable=False)
    phone_number = db.Column(db.String(40), nullable=False)

    orders = db.relationship(
        "Order", back_populates="user", cascade="all, delete-orphan", order_by="Order.order_id"
    )

    #: Fields a client may set on create and change with edit_user (password has its own route).
    EDITABLE = ("name", "cpf", "email", "phone_number")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def to_dict(self) -> dict:
        """Public representation: never includes the password or its hash."""
        return {
            "id": self.id,
            "nick_name": self.nick_name,
            "name": self.name,
            "cpf": self.cpf,
            "email": self.email,
            "phone_number": self.phone_number,
        }


class Order(db.Model):
    __tablename__ = "orders"

    order_id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(
        db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    item_description = db.Column(db.String(500), nullable=False)
    item_quantity = db.Column(db.Integer, nullable=False)
    item_price = db.Column(db.Float, nullable=False)

    user = db.relationship("User", back_populates="orders")

    def to_dict(self) -> dict:
        return {
            "order_id": self.order_id,
            "nick_name": self.user.nick_name,
            "item_description": self.item_description,
            "item_quantity": self.item_quantity,
            "item_price": self.item_price,
        }
