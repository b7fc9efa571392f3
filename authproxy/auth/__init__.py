"""Who is calling, and may they: API keys and the server secret they are hashed under, the
in-memory key index, the authenticators (key, browser session), CSRF, the client's address,
and which role may use which model.
"""

__all__: list[str] = []
