"""The browser pages: sign-in (password and OIDC), sign-out, the account page, their templates, and
what they share.
"""

__all__: list[str] = []
