"""CLI commands: named queries and the paper-vs-graph table (`mmkg queries`, `mmkg query`, `mmkg paper`)."""
from mmkg.server.cli import app, export_app  # noqa: F401
