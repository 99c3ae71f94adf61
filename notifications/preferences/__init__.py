"""The recipient's control: categories (topics) of notifications, each user's choices per
category and channel, quiet hours in the user's own zone, frequency caps, and digests.

A Django app of its own (label ``preferences``): its models, the policy delivery consults
before each channel (``policy``), the services that change preferences, the public page
reached by a signed link, the bot's ``/settings``, the admin, and its tests.
"""
