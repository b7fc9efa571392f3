"""The configuration: its typed models (`schema`, `login`) and how a file becomes one (`load`)."""

__all__: list[str] = []
