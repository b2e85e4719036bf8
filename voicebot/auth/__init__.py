"""Console accounts: roles and permissions, password hashing, sessions, API tokens, and the FastAPI
guards every staff endpoint uses (voicebot.auth.guard)."""
