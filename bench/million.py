"""A million notifications in PostgreSQL, as an operator's service holds them after a busy
month: the data of ``bench/operator_million.py``.

    .venv/bin/python bench/million.py postgres://postgres@127.0.0.1:5432/notify_1m [--rows N]

The database must be migrated (``manage.py migrate``) and is filled by SQL alone
(``INSERT … SELECT generate_series``: about a minute for a million rows):

- 50,000 users named like people (``ann.smith42``, ``ann.smith42@example.org``);
- 8 campaigns, each 40 % of the notifications of its eighth of the period (~50,000 each);
- ``rows`` notifications over the last 35 days, evenly: 80 % sent, 8 % delivered,
  2 % undelivered, 6 % failed, 2 % cancelled, 2 % queued; Telegram 60 %, email 30 %, SMS
  10 % of those that went; messages in Russian and English with order numbers, codes and
  amounts (one in 500 mentions a "chargeback", one in six a "refund");
- an attempt for each (SMS with parts and cost) and a failed Telegram attempt before one in
  four email and SMS deliveries: 1.09 attempts a notification. Failures read as providers
  write them, with the recipient's address: ``SMTP server smtp.example.com refused the
  recipient: 550 5.1.1 <ann.smith42@example.org>: Recipient address rejected: User unknown``,
  ``SMS Aero: invalid number (+79160012345)``, Telegram's ``403: Forbidden: bot was blocked by
  the user``.

Where attempts have a ``reason`` column (``notifications.reasons``), it is filled as the
service fills it when it records an attempt. Then ``VACUUM ANALYZE``, as autovacuum leaves a
table at rest.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

USERS = 50_000
CAMPAIGNS = 8
DAYS = 35

USERS_SQL = """
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
SELECT '!', false, lower(f) || '.' || lower(l) || g, f, l,
       lower(f) || '.' || lower(l) || g || '@' ||
         (ARRAY['example.org', 'mail.example.com', 'example.net', 'corp.example.org'])[1 + g %% 4],
       false, true, now() - interval '400 days'
FROM generate_series(1, %(users)s) AS g,
     LATERAL (SELECT (ARRAY['Ann', 'Boris', 'Clara', 'Dmitry', 'Elena', 'Fedor', 'Galina', 'Igor',
                            'Julia', 'Kirill', 'Lena', 'Maxim', 'Nina', 'Oleg', 'Polina', 'Roman',
                            'Sofia', 'Timur', 'Vera', 'Yuri'])[1 + g %% 20] AS f,
                     (ARRAY['Smith', 'Ivanov', 'Petrova', 'Brown', 'Sokolov', 'Novak', 'Kuznetsova',
                            'Miller', 'Orlov', 'Wilson', 'Popova', 'Lebedev', 'Taylor', 'Volkova',
                            'Morozov', 'Clark', 'Egorova', 'Pavlov', 'Walker', 'Fedorova', 'Hall',
                            'Zaitsev', 'Young', 'Belova', 'King'])[1 + (g / 20) %% 25] AS l) AS name
"""

CAMPAIGNS_SQL = """
INSERT INTO notifications_campaign
  (name, created_at, updated_at, language, context, subject, message, channels,
   audience_model, audience_ids, audience_query, audience_all, audience_size, state, cursor,
   recipients, skipped, error, created_all_at)
SELECT 'Campaign ' || c || ': ' ||
         (ARRAY['spring sale', 'maintenance window', 'new tariff', 'app update',
                'survey', 'black friday', 'security notice', 'holiday hours'])[c],
       start, start, 'ru', '{}', '', 'Campaign ' || c, '[]', 'auth.user', '[]', '', true,
       50000, 'ready', 0, 50000, 0, '', start
FROM generate_series(1, %(campaigns)s) AS c,
     LATERAL (SELECT now() - (%(campaigns)s - c + 1) * %(days)s * interval '1 day'
                     / %(campaigns)s AS start) AS at
"""

# n = 1 is the newest. Status by n % 100, channel by n / 100 % 10 (of those that went).
NOTIFICATIONS_SQL = """
INSERT INTO notifications_notification
  (user_id, campaign_id, subject, message, channels, status, channel, created_at, queued_at,
   sent_at, next_attempt_at, rounds, last_error, progress, rendered)
SELECT u.first + (n * 2654435761 %% 4294967296) %% %(users)s,
       CASE WHEN (n / 3) %% 10 < 4 THEN
         c.first + %(campaigns)s - 1 - (n - 1) * %(campaigns)s / %(rows)s END,
       '',
       CASE WHEN n %% 500 = 0 THEN 'Chargeback opened for order A-' || n || ': we will write within 3 days.'
            WHEN n %% 6 = 0 THEN 'Заказ №' || (100000 + n %% 900000) || ' отправлен, трек-номер RU' || (10000000 + n %% 89999999) || 'CN.'
            WHEN n %% 6 = 1 THEN 'Your order A-' || n || ' has shipped and will arrive in 2–3 days.'
            WHEN n %% 6 = 2 THEN 'Код подтверждения: ' || (1000 + n %% 9000) || '. Никому его не сообщайте.'
            WHEN n %% 6 = 3 THEN 'Reminder: your appointment is tomorrow at ' || (9 + n %% 9) || ':00.'
            WHEN n %% 6 = 4 THEN 'Refund of ' || (100 + n %% 5000) || ' RUB for invoice INV-' || n || ' is on its way.'
            ELSE 'Плановые работы сегодня с 02:00 до 03:00, сервис будет недоступен.' END,
       '[]',
       s.status,
       CASE WHEN s.status NOT IN ('sent', 'delivered', 'undelivered') THEN ''
            WHEN (n / 100) %% 10 < 6 THEN 'telegram' WHEN (n / 100) %% 10 < 9 THEN 'email'
            ELSE 'sms' END,
       t.at, t.at,
       CASE WHEN s.status IN ('sent', 'delivered', 'undelivered')
            THEN t.at + (n %% 50) * interval '200 milliseconds' + interval '150 milliseconds' END,
       CASE WHEN s.status = 'queued' THEN t.at END,
       1, '', '{}', '{}'
FROM generate_series(1::bigint, %(rows)s) AS n,
     (SELECT min(id) AS first FROM auth_user WHERE username LIKE '%%.%%') AS u,
     (SELECT min(id) AS first FROM notifications_campaign) AS c,
     LATERAL (SELECT now() - (n - 1) * %(days)s * interval '1 day' / %(rows)s AS at) AS t,
     LATERAL (SELECT CASE WHEN n %% 100 < 80 THEN 'sent' WHEN n %% 100 < 88 THEN 'delivered'
                          WHEN n %% 100 < 90 THEN 'undelivered' WHEN n %% 100 < 96 THEN 'failed'
                          WHEN n %% 100 < 98 THEN 'cancelled' ELSE 'queued' END AS status) AS s
ORDER BY n DESC
"""

# The failure of a failed notification, by its id: a mail server's bounce with the address,
# a transient mailbox-full, an SMS gate's refusal with the number, an SMSC's status.
FAILURE = """
CASE WHEN (n.id / 100) %% 20 < 10 THEN
       'SMTP server smtp.example.com refused the recipient: 550 5.1.1 <' || u.email ||
       '>: Recipient address rejected: User unknown in virtual mailbox table'
     WHEN (n.id / 100) %% 20 < 14 THEN
       'SMTP server smtp.example.com refused the recipient: 452 4.2.2 <' || u.email ||
       '>: Mailbox full, quota exceeded (' || (100 + n.id %% 400) || ' MB)'
     WHEN (n.id / 100) %% 20 < 17 THEN
       'SMS Aero: invalid number (+7916' || lpad(((u.id * 7907) %% 10000000)::text, 7, '0') || ')'
     ELSE 'smpp.example.net:2775 answered submit_sm with Invalid destination address (0x0000000B)'
END
"""

ATTEMPTS_SQL = f"""
INSERT INTO notifications_deliveryattempt
  (notification_id, round, channel, transport, outcome, error, provider_message_id,
   started_at, duration_ms, cost, segments, receipt_status, receipt_error)
SELECT n.id, 1,
  CASE WHEN n.status = 'failed' THEN
         CASE WHEN (n.id / 100) %% 20 < 14 THEN 'email' ELSE 'sms' END
       WHEN n.channel = '' THEN 'telegram' ELSE n.channel END,
  CASE WHEN n.status = 'failed' THEN
         CASE WHEN (n.id / 100) %% 20 < 14 THEN 'email' WHEN (n.id / 100) %% 20 < 17 THEN 'smsaero' ELSE 'smpp' END
       WHEN n.channel = 'sms' THEN 'smsaero' WHEN n.channel = '' THEN 'telegram'
       ELSE n.channel END,
  CASE WHEN n.status IN ('sent', 'delivered', 'undelivered') THEN 'success'
       WHEN n.status = 'failed' THEN
         CASE WHEN (n.id / 100) %% 20 BETWEEN 10 AND 13 THEN 'transient' ELSE 'permanent' END
       ELSE 'skipped' END,
  CASE WHEN n.status = 'failed' THEN {FAILURE}
       WHEN n.status IN ('cancelled', 'queued') THEN 'no Telegram chat id' ELSE '' END,
  CASE WHEN n.status IN ('sent', 'delivered', 'undelivered') THEN 'msg-' || n.id ELSE '' END,
  n.created_at + interval '100 milliseconds', 120 + n.id %% 400,
  CASE WHEN n.channel = 'sms' THEN 4.95 * (1 + n.id %% 2) END,
  CASE WHEN n.channel = 'sms' THEN 1 + n.id %% 2 END,
  CASE WHEN n.status IN ('delivered', 'undelivered') THEN n.status ELSE '' END,
  CASE WHEN n.status = 'undelivered' THEN 'status 2' ELSE '' END
FROM notifications_notification AS n JOIN auth_user AS u ON u.id = n.user_id;

INSERT INTO notifications_deliveryattempt
  (notification_id, round, channel, transport, outcome, error, provider_message_id,
   started_at, duration_ms, receipt_status, receipt_error)
SELECT n.id, 1, 'telegram', 'telegram', 'permanent',
  CASE WHEN n.id %% 5 < 3 THEN 'Telegram 403: Forbidden: bot was blocked by the user'
       ELSE 'Telegram 400: Bad Request: chat not found' END,
  '', n.created_at, 80, '', ''
FROM notifications_notification AS n WHERE n.channel IN ('email', 'sms') AND (n.id / 7) %% 4 = 0;

UPDATE notifications_notification AS n SET last_error = 'round 1: ' || a.transport || ': ' || a.error
FROM notifications_deliveryattempt AS a
WHERE a.notification_id = n.id AND n.status = 'failed'
"""


# What a NOT NULL column without a default that an INSERT here doesn't name gets (a column
# added after this generator was written), by its type.
NEUTRAL = {
    "boolean": "false",
    "smallint": "0",
    "integer": "0",
    "bigint": "0",
    "numeric": "0",
    "jsonb": "'{}'",
    "timestamp with time zone": "now()",
}


def completed(conn: psycopg.Connection, sql: str) -> str:
    """``sql`` (``INSERT INTO table (columns) SELECT … \nFROM …``) with a neutral value for
    each NOT NULL column of the table it leaves out."""
    table = sql.split("INSERT INTO", 1)[1].split()[0]
    opening, closing = sql.index("("), sql.index(")")
    named = {name.strip() for name in sql[opening + 1 : closing].split(",")}
    missing = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'",
        [table],
    ).fetchall()
    extra = [(name, NEUTRAL.get(kind, "''")) for name, kind in missing if name not in named]
    if not extra:
        return sql
    ending = sql.index("\nFROM ")
    return (
        sql[:closing]
        + "".join(f", {name}" for name, _ in extra)
        + sql[closing:ending]
        + "".join(f", {value}" for _, value in extra)
        + sql[ending:]
    )


def has_reason_column(conn: psycopg.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = "
            "'notifications_deliveryattempt' AND column_name = 'reason'"
        ).fetchone()
    )


def stamp_reasons(conn: psycopg.Connection) -> int:
    """Fill ``reason`` as the service does when it records an attempt; how many distinct
    errors there were."""
    from notifications.reasons import reason_of

    errors = [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT error FROM notifications_deliveryattempt WHERE error <> ''"
        )
    ]
    conn.execute("CREATE TEMPORARY TABLE bench_reason (error text PRIMARY KEY, reason text)")
    with conn.cursor().copy("COPY bench_reason (error, reason) FROM STDIN") as copy:
        for error in errors:
            copy.write_row((error, reason_of(error)))
    conn.execute(
        "UPDATE notifications_deliveryattempt AS a SET reason = r.reason "
        "FROM bench_reason AS r WHERE a.error = r.error"
    )
    conn.execute("DROP TABLE bench_reason")
    return len(errors)


def fill(url: str, rows: int = 1_000_000, *, log=print) -> dict[str, int]:
    """Add the users, campaigns, ``rows`` notifications and their attempts to the database
    at ``url``; the counts made."""
    began = time.perf_counter()
    params = {"rows": rows, "users": USERS, "campaigns": CAMPAIGNS, "days": DAYS}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SET work_mem = '64MB'")
        for sql in (USERS_SQL, CAMPAIGNS_SQL, NOTIFICATIONS_SQL):
            conn.execute(completed(conn, sql), params)
        for statement in ATTEMPTS_SQL.split(";"):
            if statement.strip().startswith("INSERT"):
                statement = completed(conn, statement)
            conn.execute(statement.replace("%%", "%"))
        distinct = stamp_reasons(conn) if has_reason_column(conn) else 0
        conn.execute("VACUUM ANALYZE")
        counts = {
            "notifications": conn.execute(
                "SELECT count(*) FROM notifications_notification"
            ).fetchone()[0],
            "attempts": conn.execute(
                "SELECT count(*) FROM notifications_deliveryattempt"
            ).fetchone()[0],
            "distinct_errors": distinct
            or conn.execute(
                "SELECT count(DISTINCT error) FROM notifications_deliveryattempt WHERE error <> ''"
            ).fetchone()[0],
        }
    log(
        f"  {counts['notifications']:,} notifications, {counts['attempts']:,} attempts "
        f"({counts['distinct_errors']:,} distinct errors) made in "
        f"{time.perf_counter() - began:.0f} s",
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url", help="a migrated PostgreSQL database")
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    fill(options.url, options.rows)


if __name__ == "__main__":
    main()
