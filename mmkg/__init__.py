"""mmkg — a knowledge graph of mental-model codes and threats from qualitative security studies.

    import mmkg
    with mmkg.open_store("./store") as kg:
        kg.load()                        # the shipped founding study
        kg.query("cooccurrence", unit="segment")   # a pandas DataFrame
"""
from mmkg.api import LoadReport, Mmkg, open_store
from mmkg.errors import MmkgError

__version__ = "0.1.0"
__all__ = ["open_store", "Mmkg", "LoadReport", "MmkgError", "__version__"]
