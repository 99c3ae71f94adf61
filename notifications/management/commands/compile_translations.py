"""``manage.py compile_translations``: the .po catalogues of LOCALE_PATHS compiled to .mo.

Django's own ``compilemessages`` needs GNU gettext's ``msgfmt``; this needs only Python
(``polib``), so ``make run`` works on a machine with nothing but Python. A catalogue is
compiled when its .mo is missing or older; fuzzy entries are left out, as msgfmt does. The
.mo is written beside it and renamed into place: a process starting meanwhile (two ``make
test`` at once, CI's tiers) reads the old file or the new, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compile the translation catalogues (locale/*/LC_MESSAGES/*.po) to .mo files."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="compile even if up to date")

    def handle(self, *args, force: bool = False, **options) -> None:
        for root in map(Path, settings.LOCALE_PATHS):
            for po_path in sorted(root.glob("*/LC_MESSAGES/*.po")):
                mo_path = po_path.with_suffix(".mo")
                if (
                    not force
                    and mo_path.exists()
                    and mo_path.stat().st_mtime >= po_path.stat().st_mtime
                ):
                    continue
                catalogue = polib.pofile(str(po_path))
                for entry in catalogue.fuzzy_entries():
                    catalogue.remove(entry)
                handle, partial = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.partial")
                os.close(handle)
                try:
                    catalogue.save_as_mofile(partial)
                    os.replace(partial, mo_path)
                finally:
                    if os.path.exists(partial):
                        os.unlink(partial)
                if options["verbosity"] > 1:
                    self.stdout.write(f"compiled {mo_path}")
