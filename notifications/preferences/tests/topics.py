"""Sample categories for the tests of the preference page and the bot's ``/settings``: one on
by default for every channel, one opt-in, and one required (login codes)."""

from __future__ import annotations

from dataclasses import dataclass

from notifications.preferences.models import Category


@dataclass
class Topics:
    orders: Category
    promotions: Category
    security: Category


def make_topics() -> Topics:
    """Order updates (on by default), Promotions (opt-in), Security (required). The default
    category the migration makes ("General") is removed, so the list is exactly these."""
    Category.objects.filter(key="general").delete()
    return Topics(
        orders=Category.objects.create(
            key="orders",
            name_en="Order updates",
            name_ru="Заказы",
            description_en="Shipping and delivery of your orders.",
            description_ru="Отправка и доставка ваших заказов.",
        ),
        promotions=Category.objects.create(
            key="promotions",
            name_en="Promotions",
            name_ru="Акции",
            description_en="Offers and discounts, at most once a week.",
            description_ru="Предложения и скидки, не чаще раза в неделю.",
            opt_in=True,
        ),
        security=Category.objects.create(
            key="security",
            name_en="Security",
            name_ru="Безопасность",
            description_en="Sign-in codes and alerts about your account.",
            description_ru="Коды входа и предупреждения о вашей учётной записи.",
            required=True,
        ),
    )
