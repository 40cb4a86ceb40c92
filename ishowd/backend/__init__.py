"""The iShowTTS backend: its log format, log ingestion and the health probe.

Import-light on purpose: the CLI imports ``ishowd.backend.logformat`` (pure
functions) but never the ingestion code, which needs SQLAlchemy.
"""
