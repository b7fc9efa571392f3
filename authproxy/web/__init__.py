"""The HTTP server around every route: the middleware, the status pages, the listening sockets and
the redaction of the server's logs.
"""

__all__: list[str] = []
