"""The web app (`pulsecheck serve`): server-rendered pages over the same services as the CLI, sign-in, sessions,
CSRF; `api.py` is where the JSON API (`/api/v1`) lives."""
