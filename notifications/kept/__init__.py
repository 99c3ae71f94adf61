"""Counts over many rows (the dashboard's, a campaign's progress), kept in a table that every
web process reads, and counted again behind while someone watches: ``services``."""
