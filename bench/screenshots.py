"""``make screenshots``: pictures of the real admin for the README, taken by headless Chromium.

Runs the service as it runs for real, on a free port of 127.0.0.1 and a temporary SQLite
database: migrate, an admin account, a few users and notifications; the real consumer
(``manage.py run_huey``) delivers them to the fake Telegram and SMTP servers of the tests, so
the attempts on the pictures are real ones; then gunicorn serves the admin, Playwright logs in
through the login form and writes PNGs into ``assets/`` (``--out DIR`` writes elsewhere, e.g.
to look at them first). Needs Chromium (``apt-get install chromium``) and the dev requirements.

One more picture is one more line in ``SHOTS``: a URL path (``{name}`` is filled from the
seeded ids) or a function ``(page, ids)`` that leaves the page as it should be pictured.
"""

from __future__ import annotations

import argparse
import datetime
import html
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from notifications.tests.browser import find_chromium, launch_chromium, log_in  # noqa: E402
from notifications.tests.fakes.smtp import FakeSmtp  # noqa: E402
from notifications.tests.fakes.telegram import FakeTelegram  # noqa: E402

CHANGELIST = "/admin/notifications/notification/"
VIEWPORT = {"width": 1600, "height": 900}
ADMIN = "admin"
ADMIN_PASSWORD = secrets.token_urlsafe(12)


def send_action(page, ids: dict[str, int]) -> None:
    """The bulk action's report: two pending rows and one sent row ticked, then Go."""
    page.goto(CHANGELIST)
    for pk in (ids["digest"], ids["maintenance"], ids["shipped"]):
        page.locator(f'input[name="_selected_action"][value="{pk}"]').check()
    page.get_by_label("Action:").select_option(label="Send selected notifications")
    page.get_by_role("button", name="Go").click()
    page.locator(".messagelist").wait_for()


def contact_errors(page, ids: dict[str, int]) -> None:
    """A contact with a mistyped chat id and phone: the form refuses both, next to the fields."""
    page.goto(f"/admin/notifications/usercontact/{ids['alice_contact']}/change/")
    page.get_by_label("Telegram chat id:").fill("chat 42")
    page.get_by_label("Phone:").fill("12345")
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator(".errornote").wait_for()


def show_link(page, ids: dict[str, int]) -> None:
    page.goto(f"/admin/notifications/usercontact/{ids['erin_contact']}/change/")
    page.get_by_role("button", name="Show a Telegram link").click()
    page.locator("#telegram-link").wait_for()


def contact_link(page, ids: dict[str, int]) -> None:
    """A contact not yet on Telegram: "Show a Telegram link" gives the invite link and its QR
    code (a page view never shows one)."""
    show_link(page, ids)


CHAT_PAGE = """<!doctype html><meta charset="utf-8"><title>Telegram</title>
<style>
body {{ margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #8aa874; }}
header {{ background: #517da2; color: #fff; padding: 12px 18px; font-weight: 600; }}
header small {{ display: block; font-weight: 400; opacity: .8; }}
main {{ display: flex; flex-direction: column; gap: 10px; padding: 18px; }}
.msg {{ max-width: 70%; padding: 8px 12px; border-radius: 12px; box-shadow: 0 1px 1px #0003; }}
.me {{ align-self: flex-end; background: #effdde; }}
.bot {{ align-self: flex-start; background: #fff; }}
.note {{ align-self: center; background: #0004; color: #fff; font-size: 13px; border-radius: 10px;
  padding: 3px 10px; }}
</style>
<header>@{bot}<small>bot</small></header>
<main><div class="note">the conversation as the service's test Bot API recorded it</div>
<div class="msg me">{start}</div><div class="msg bot">{reply}</div></main>
"""


def bot_reply(page, ids: dict[str, int]) -> None:
    """The user opens the link and presses Start: Telegram sends the bot ``/start <token>``;
    the real ``manage.py telegram_poll`` takes it, links the chat and answers. The chat is
    drawn from what the fake Bot API recorded (no real Telegram here)."""
    telegram, env, work = SERVICE["telegram"], SERVICE["env"], SERVICE["work"]
    show_link(page, ids)
    link = page.locator("#telegram-link").inner_text()
    start = "/start " + link.split("start=", 1)[1]
    telegram.push_update(telegram.message_update(ERIN_CHAT, start, first_name="Erin"))
    log = work / "poll.log"
    command = [sys.executable, "manage.py", "telegram_poll", "--iterations", "2", "--timeout", "0"]
    with log.open("w") as out:
        subprocess.run(command, cwd=BASE_DIR, env=env, stdout=out, stderr=out, check=True)
    [reply] = telegram.delivered_to(ERIN_CHAT)
    page.set_viewport_size({"width": 720, "height": 360})
    page.set_content(
        CHAT_PAGE.format(bot="fake_bot", start=html.escape(start), reply=html.escape(reply))
    )


def contact_linked(page, ids: dict[str, int]) -> None:
    """The same contact after the bot linked it: its chat id is filled in."""
    page.set_viewport_size(VIEWPORT)
    page.goto(f"/admin/notifications/usercontact/{ids['erin_contact']}/change/")


def compose_preview(page, ids: dict[str, int]) -> None:
    """ "Send a notification…" on every user: the message and each channel's preview."""
    page.goto("/admin/auth/user/")
    page.locator("#action-toggle").check()
    page.get_by_label("Action:").select_option(label="Send a notification…")
    page.get_by_role("button", name="Go").click()
    page.get_by_label("Campaign name:").fill("Maintenance tonight")
    page.get_by_label("Subject:").fill("Maintenance tonight, 02:00–03:00 UTC")
    page.get_by_label("Message:").fill(
        "The service is down for maintenance tonight from 02:00 to 03:00 UTC. "
        "Nothing is lost: messages sent meanwhile arrive after it."
    )
    # At 10:00 tomorrow on each recipient's own clock (issue 16).
    tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
    page.locator("#id_send_at_0").fill(tomorrow)
    page.locator("#id_send_at_1").fill("10:00:00")
    page.get_by_label("In each recipient's local time").check()
    page.get_by_role("button", name="Preview").click()
    page.locator("#nf-preview").wait_for()


def campaign_page(page, ids: dict[str, int]) -> None:
    """The campaign confirmed (from the preview above, but now rather than at 10:00
    tomorrow), delivered by the real consumer."""
    page.locator("#id_send_at_0").fill("")
    page.locator("#id_send_at_1").fill("")
    page.get_by_label("In each recipient's local time").uncheck()
    page.get_by_role("button", name="Preview").click()
    page.locator("#nf-preview").wait_for()
    page.get_by_role("button", name=re.compile("^Send to")).click()
    page.locator("#campaign-progress").wait_for()
    # Playwright's loop counts as running here; nothing runs on it while the ORM is used.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        deliver(dict(os.environ), Path(os.environ["NOTIFY_VAR_DIR"]))
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    page.reload()
    page.locator('#campaign-progress[data-nf-done="true"]').wait_for()


PHONE = {"width": 360, "height": 740}


def preference_page(viewport: dict[str, int], lang: str, save: bool = False) -> Callable:
    """A user's preference page as they reach it from the link in their emails (no login), in
    ``lang`` on a screen of ``viewport``; ``save``: Promotions by email ticked and saved
    first, so the picture shows "Saved"."""

    def picture_page(page, ids: dict[str, int]) -> None:
        from django.urls import reverse

        from notifications.preferences.links import page_token

        page.set_viewport_size(viewport)
        page.goto(reverse("preferences-page", args=[page_token(ids["alice"])]) + f"?lang={lang}")
        if save:
            page.locator('input[value="promotions:email"]').check()
            page.locator('button[type="submit"]').click()
            page.locator(".saved").wait_for()

    return picture_page


def seed_topics() -> None:
    """The categories users choose from (and one always sent), for the preference page."""
    from notifications.preferences.models import Category

    Category.objects.create(
        key="orders",
        name_en="Order updates",
        name_ru="Заказы",
        description_en="Shipping and delivery of your orders.",
        description_ru="Отправка и доставка ваших заказов.",
    )
    Category.objects.create(
        key="promotions",
        name_en="Promotions",
        name_ru="Акции",
        description_en="Offers and discounts, at most once a week.",
        description_ru="Предложения и скидки, не чаще раза в неделю.",
        opt_in=True,
        default_channels=["email"],
    )
    Category.objects.create(
        key="security",
        name_en="Security",
        name_ru="Безопасность",
        description_en="Sign-in codes and alerts about your account.",
        description_ru="Коды входа и предупреждения о вашей учётной записи.",
        required=True,
    )


def russian_admin(page, ids: dict[str, int]) -> None:
    """The admin after the switch to Russian (the language switcher, top right)."""
    page.goto(CHANGELIST)
    page.get_by_role("button", name="Русский").click()
    page.locator("#site-name").get_by_text("Служба уведомлений").wait_for()


# (URL path or function, file name), pictured in this order (the action changes rows).
SHOTS: list[tuple[str | Callable, str]] = [
    (CHANGELIST, "admin-notifications.png"),
    (CHANGELIST + "{fallback}/change/", "admin-attempts.png"),
    (send_action, "admin-send-action.png"),
    (contact_errors, "admin-contact-errors.png"),
    (contact_link, "admin-contact-telegram-link.png"),
    (bot_reply, "telegram-bot-reply.png"),
    (contact_linked, "admin-contact-telegram-linked.png"),
    (compose_preview, "admin-compose.png"),
    (campaign_page, "admin-campaign.png"),
    ("/admin/dashboard/?period=today", "admin-dashboard.png"),
    (russian_admin, "admin-russian.png"),
    (preference_page(PHONE, "ru"), "preferences-phone-ru.png"),
    (preference_page(PHONE, "en"), "preferences-phone-en.png"),
    (preference_page(VIEWPORT, "en", save=True), "preferences-desktop-en.png"),
    (preference_page(VIEWPORT, "ru"), "preferences-desktop-ru.png"),
]
# The fakes, environment and work directory of this run, for shots that drive the service.
SERVICE: dict = {}
ERIN_CHAT = 700100200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(work: Path, port: int, telegram: FakeTelegram, smtp: FakeSmtp) -> dict[str, str]:
    """The service's settings: this run's files and fakes, nothing from a developer's .env."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "EMAIL_", "NOTIFY_", "SMS", "SMPP_", "DJANGO_"))
        and key not in ("DATABASE_URL", "QUEUE_URL", "PORT")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="notification_service.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        NOTIFY_SKIP_DOTENV="1",
        NOTIFY_VAR_DIR=str(work),
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        QUEUE_URL=f"sqlite:///{work / 'huey.sqlite3'}",
        PORT=str(port),
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_URL=telegram.url,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        EMAIL_USE_TLS="0",  # the fake SMTP server speaks plain SMTP
        DEFAULT_FROM_EMAIL="notifications@example.com",
        NOTIFY_HTTP_TIMEOUT="2",
        EMAIL_TIMEOUT="2",
        NOTIFY_WORKERS="2",
        TELEGRAM_UPDATES="poll",
    )
    return env


def seed(telegram: FakeTelegram, smtp: FakeSmtp) -> dict[str, int]:
    """An admin, four users, and notifications the consumer will deliver (or fail to)."""
    from django.contrib.auth import get_user_model

    from notifications.models import Notification, UserContact
    from notifications.services import notification_create

    User = get_user_model()
    User.objects.create_superuser(ADMIN, "admin@example.com", ADMIN_PASSWORD)

    def user(username: str, email: str = "", **contact) -> object:
        created = User.objects.create_user(username, email=email)
        UserContact.objects.filter(user=created).update(**contact)
        return created

    alice = user("alice", "alice@example.com", telegram_chat_id="123456789")
    bob = user("bob", "bob@example.com", telegram_chat_id="987654321")
    carol = user("carol", "carol@example.org", phone="+79161234567")
    dmitry = user("dmitry", "dmitry@example.com", telegram_chat_id="-1001234567890")
    erin = user("erin", "erin@example.com")  # not on Telegram yet: gets linked by the pictures
    telegram.per_chat["987654321"] = "403"  # bob blocked the bot: email takes over
    smtp.handler.refuse_permanently.add("carol@example.org")  # and SMS is not configured

    def notify(to, message: str, subject: str = "") -> int:
        return notification_create(user=to, message=message, subject=subject).pk

    seed_topics()
    ids = {
        "alice": alice.pk,
        "alice_contact": alice.contact.pk,
        "erin_contact": erin.contact.pk,
        "shipped": notify(alice, "Your order #1042 has shipped. Track it at example.com/t/1042"),
        "fallback": notify(
            bob,
            "Your password was changed. If it wasn't you, reply to this email.",
            "Password changed",
        ),
        "invoice": notify(carol, "Your November invoice is ready: 12.40 EUR.", "Invoice"),
        "deploy": notify(dmitry, "Deploy finished: v2.4.1 is live on production."),
        "renewal": notify(alice, "Reminder: your subscription renews on 1 December."),
    }
    # Saved as they are (no signal queues them): for the bulk action to act on.
    digest, maintenance = Notification.objects.bulk_create(
        [
            Notification(user=bob, message="Weekly digest: 3 new comments on your posts."),
            Notification(user=dmitry, message="Maintenance tonight 02:00–03:00 UTC."),
        ]
    )
    return {**ids, "digest": digest.pk, "maintenance": maintenance.pk}


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=out)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(condition: Callable[[], object], what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}; see {log}:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def deliver(env: dict[str, str], work: Path) -> None:
    """Run the real consumer until nothing is queued or being sent."""
    from notifications.models import Notification

    busy = Notification.objects.filter(status__in=["queued", "sending"])
    log = work / "consumer.log"
    command = [sys.executable, "manage.py", "run_huey", "-w", "2", "-k", "thread"]
    with process(command, env, log):
        wait_until(lambda: not busy.exists(), "the consumer to deliver", log)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def picture(base_url: str, ids: dict[str, int], out: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        sys.exit("no Chromium: install the Debian package chromium (`apt-get install chromium`)")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, executable)
        context = browser.new_context(
            base_url=base_url, viewport=VIEWPORT, locale="en-US", timezone_id="UTC"
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        log_in(page, ADMIN, ADMIN_PASSWORD)
        page.locator("#user-tools").wait_for()
        for target, name in SHOTS:
            if callable(target):
                target(page, ids)
            else:
                page.goto(target.format(**ids))
            page.screenshot(path=out / name, full_page=True)
            print(f"  {out / name}")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=BASE_DIR / "assets", help="where PNGs go")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="notify-screenshots-"))
    telegram, smtp = FakeTelegram().start(), FakeSmtp().start()
    try:
        port = free_port()
        env = service_env(work, port, telegram, smtp)
        os.environ.clear()
        os.environ.update(env)
        import django
        from django.core.management import call_command

        django.setup()
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # the fake SMTP server's chatter
        call_command("migrate", verbosity=0)
        ids = seed(telegram, smtp)
        SERVICE.update(telegram=telegram, env=env, work=work)
        deliver(env, work)
        log = work / "web.log"
        web = [sys.executable, "-m", "gunicorn", "notification_service.wsgi"]
        web += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"]
        with process(web, env, log):
            base_url = f"http://127.0.0.1:{port}"
            wait_until(lambda: answers(base_url + "/admin/login/"), "the web server", log)
            print(f"screenshots of {base_url}/admin/:")
            picture(base_url, ids, out)
    finally:
        telegram.stop()
        smtp.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
