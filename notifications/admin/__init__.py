"""The operator's interface: contacts, notifications, their attempts, bulk actions; templates,
campaigns ("Send a notification…" on users and contacts) and their progress; API keys.

One module per concern; importing the package registers them all. Thin by design: actions
call ``notifications.services`` and report counts. The dashboard and the JSON endpoints the
pages poll live in ``notifications.views``.
"""

from notifications.admin import api_keys, campaigns, contacts, notifications, templates

__all__ = ["api_keys", "campaigns", "contacts", "notifications", "templates"]
