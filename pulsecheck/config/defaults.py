"""What a command needs of the settings when no layer sets a section: the top-level keys, all text, and their
defaults, known without the typed models. Importing pydantic and building the section classes is a fifth of a
read command's start-up (issue 17), so `sections.py` is imported only when a command reads a section or a layer
sets one. tests/unit/test_config.py checks these against `sections.SettingsFile`.
"""

DEFAULT_DB = "sqlite:///pulsecheck.db"
# The top-level keys (every other key is a section): text, with their defaults.
TOP_LEVEL = {"database_url": DEFAULT_DB, "timezone": "UTC"}
# Top-level keys typed plain `str` (no constraint, no validator): text for them needs no validation.
PLAIN_TEXT = frozenset({"database_url"})
