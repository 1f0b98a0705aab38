"""The roles a user can hold (a light module: the CLI lists them at start-up)."""

ROLES = ("reviewer", "manager", "head_of_cs", "ops", "admin")
