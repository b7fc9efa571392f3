"""The OpenID Connect relying party: provider documents, the code exchange, token checks, users
from claims, and IdP tokens as API credentials. No pages.
"""

__all__: list[str] = []
