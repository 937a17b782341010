"""An independent census of a REFI-QDA project, straight from its XML (zipfile + ElementTree only).

Shared by the reader tests (tests/test_refi_qda.py) and the graph-level tests
(tests/test_refi_import_graph.py); it never imports mmkg.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

NS = "{urn:QDA-XML:project:1.0}"
SELECTIONS = ("PlainTextSelection", "PictureSelection", "PDFSelection", "AudioSelection", "VideoSelection",
              "TranscriptSelection")
SOURCE_KINDS = ("TextSource", "PictureSource", "PDFSource", "AudioSource", "VideoSource")


def census(path: Path) -> tuple[int, int, int, int, int]:
    """(codes, codable codes, sources, selections, codings) counted in the archive's `.qde`."""
    with zipfile.ZipFile(path) as archive:
        [qde] = [n for n in archive.namelist() if n.lower().endswith(".qde") and "/" not in n]
        root = ET.fromstring(archive.read(qde))
    codes = list(root.iter(f"{NS}Code"))
    sources_element = root.find(f"{NS}Sources")
    sources = [e for e in (sources_element if sources_element is not None else []) if e.tag[len(NS):] in SOURCE_KINDS]
    selections = [e for kind in SELECTIONS for e in root.iter(f"{NS}{kind}")]
    codings = list(sources_element.iter(f"{NS}Coding")) if sources_element is not None else []
    return (len(codes), sum(c.get("isCodable") == "true" for c in codes), len(sources), len(selections),
            len(codings))
