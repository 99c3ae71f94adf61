"""Operations: what a team running the service needs to see inside it and keep it tidy —
health probes, Prometheus metrics, structured logs, error reports, and retention.

A Django app of its own (label ``operations``), with its models, services, views and tests
beside each other. The delivery code reports counts through ``operations.metrics`` only.
"""
