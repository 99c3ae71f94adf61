"""Bounces and complaints suppress an email address.

A Django app of its own (label ``suppression``): an address a provider says is dead (a hard
bounce, a rejection, a spam complaint, too many soft bounces, or an SMTP server's "user
unknown" at send time) is suppressed, and the email channel skips it until an operator lifts
it. Here: the models (``Suppression``, the inbox of ``TrackingEvent``s), the services that
suppress and lift (``services``), the reading of django-anymail's tracking events
(``tracking``), its signal receiver, tasks, admin and tests. The policy step
(``notifications.preferences.policy``) reads the active suppressions of a claimed batch.
"""
