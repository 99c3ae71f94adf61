"""Russian and English: the Russian catalogue is complete (every string of the code, every one
translated, placeholders kept), it compiles with Python alone, and the admin speaks it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from notifications.content import content_for, default_subject
from notifications.models import Notification, UserContact

User = get_user_model()

BASE_DIR = Path(settings.BASE_DIR)
CATALOGUE = BASE_DIR / "locale" / "ru" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|%[sd]")


def entries() -> list[polib.POEntry]:
    return [e for e in polib.pofile(str(CATALOGUE)) if not e.obsolete]


def test_every_russian_translation_is_there_and_not_fuzzy():
    missing = []
    for entry in entries():
        texts = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if "fuzzy" in entry.flags or not texts or not all(t.strip() for t in texts):
            missing.append(entry.msgid)
    assert missing == []


def test_translations_keep_every_placeholder():
    wrong = []
    for entry in entries():
        texts = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        wanted = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        wrong += [entry.msgid for text in texts if sorted(PLACEHOLDER.findall(text)) != wanted]
    assert wrong == []


def test_the_catalogue_has_every_string_of_the_code(tmp_path):
    """makemessages over a copy of the code: no msgid the catalogue lacks (GNU gettext's
    xgettext is needed to extract; CI installs it)."""
    if shutil.which("xgettext") is None:
        if os.environ.get("CI"):
            pytest.fail("xgettext is missing: apt-get install gettext")
        pytest.skip("xgettext is missing: apt-get install gettext")
    for name in ("manage.py", "notifications", "notification_service"):
        source = BASE_DIR / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    (tmp_path / "locale").mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "notification_service.settings"}
    env.update(NOTIFY_SKIP_DOTENV="1", NOTIFY_VAR_DIR=str(tmp_path / "var"))
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ru", "--no-location"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    extracted = {e.msgid for e in polib.pofile(str(tmp_path / "locale/ru/LC_MESSAGES/django.po"))}
    known = {e.msgid for e in entries()}
    assert sorted(extracted - known) == []


def test_compile_translations_needs_only_python(tmp_path, settings):
    (tmp_path / "ru" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy(CATALOGUE, tmp_path / "ru" / "LC_MESSAGES" / "django.po")
    settings.LOCALE_PATHS = [tmp_path]
    call_command("compile_translations")
    compiled = polib.mofile(str(tmp_path / "ru" / "LC_MESSAGES" / "django.mo"))
    assert compiled.find("Send a notification…").msgstr == "Отправить уведомление…"


@pytest.mark.django_db
def test_the_admin_speaks_the_browsers_language_and_the_switchers(admin_client):
    call_command("compile_translations")
    translation.trans_real._translations.clear()  # read the freshly compiled catalogue
    changelist = reverse("admin:notifications_notification_changelist")
    english = admin_client.get(changelist)
    assert "Delivery order:" in english.text and 'lang="ru"' in english.text
    russian = admin_client.get(changelist, HTTP_ACCEPT_LANGUAGE="ru")
    assert "Порядок доставки:" in russian.text and "Отправить выбранные уведомления" in russian.text
    admin_client.post(reverse("set_language"), {"language": "ru", "next": changelist})
    assert "Порядок доставки:" in admin_client.get(changelist).text
    admin_client.post(reverse("set_language"), {"language": "en", "next": changelist})
    assert "Delivery order:" in admin_client.get(changelist).text


@pytest.mark.django_db
def test_the_default_email_subject_is_in_the_recipients_language(make_user, settings):
    settings.NOTIFY_EMAIL_SUBJECT = ""
    russian, english = make_user(email="ru@example.com"), make_user(email="en@example.com")
    UserContact.objects.filter(user=russian).update(language="ru")
    for user, subject in ((russian, "Уведомление"), (english, "Notification")):
        notification = Notification(user=User.objects.select_related("contact").get(pk=user.pk))
        for operator in ("ru", "en"):  # the admin's preview shows what the consumer sends
            with translation.override(operator):
                assert content_for(notification, "email").subject == subject
    settings.LANGUAGE_CODE = "ru"  # a contact with no language: the service's
    assert default_subject() == "Уведомление"
