"""Telegram paid broadcast, opt-in per campaign.

A Django app of its own (label ``broadcast``). A campaign created with "Paid broadcast
(Telegram)" and a Stars budget has a ``CampaignStars`` row; its Telegram messages go out with
the Bot API's ``allow_paid_broadcast`` (up to 1,000 messages/s, 0.1 Star each) at
``NOTIFY_TELEGRAM_PAID_RATE``, for as long as its budget and the day's
(``NOTIFY_TELEGRAM_STARS_DAILY_LIMIT``, ``StarsDailyCount``) last; the rest go out unflagged
at the free pace. Here: the models, the services that take and give back one message's Stars
(``services``, which the Telegram sender calls), the admin and the tests.
"""
