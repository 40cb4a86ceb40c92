"""The iShowTTS backend: its log format, log ingestion and the health probe.

Import-light on purpose: ``logformat`` is pure functions, and a catch-up worker
process imports only it and ``scanworker``.
"""
