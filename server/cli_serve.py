"""CLI command `mmkg serve`."""
from mmkg.server.cli import app, export_app  # noqa: F401
