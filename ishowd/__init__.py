"""ishowd: monitoring and maintenance for an iShowTTS deployment."""

__version__ = "0.1.0"
