"""Status webhooks to client services: signed events out, through an outbox.

A Django app of its own (label ``webhooks``). Operators and client services register
*endpoints* (a URL, the event types it wants, one or two ``whsec_`` secrets); every status
change of a notification that some enabled endpoint wants writes an *event* row in the same
statement as the change, from a database trigger (``triggers``). A lane beside each consumer
(``lane``, a process of its own started by ``tasks``) makes each event's *deliveries*, one
per endpoint that wants it, claims the due ones, signs them per the Standard Webhooks
specification (``signing``), posts them (``transport``, with its address guard in
``addresses``) and records each try (``outbox``), retrying on a fixed schedule and disabling
an endpoint that never answers.
The admin (``admin``) and the HTTP API (``api``) manage endpoints and replay deliveries
through ``services``.
"""
