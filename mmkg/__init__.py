"""mmkg — a knowledge graph of mental-model codes and threats from qualitative security studies.

    import mmkg
    with mmkg.open_store("./store") as kg:
        kg.load()                        # the shipped founding study
        kg.query("cooccurrence", unit="segment")   # a pandas DataFrame
"""
from mmkg.errors import MmkgError

__all__ = ["open_store", "Mmkg", "LoadReport", "MmkgError", "__version__"]


def __getattr__(name: str):
    # The facade (and pandas with it) loads on first use, so `mmkg.errors` or the ad-hoc Cypher worker
    # can be imported without it; so does the version (importlib.metadata costs the CLI's start-up).
    if name == "__version__":
        from importlib.metadata import version

        return version("mmkg")  # pyproject.toml is the one place it is written
    if name in ("open_store", "Mmkg", "LoadReport"):
        from mmkg import api

        return getattr(api, name)
    raise AttributeError(f"module 'mmkg' has no attribute {name!r}")
