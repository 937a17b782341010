"""Reading REFI-QDA exchange files (`.qdpx` project archives, bare `.qde` projects, `.qdc` codebooks).

Uploads reach this code, so every input is treated as hostile: the archive is read in memory only
(never extracted), its members are checked against `ArchiveLimits` before anything is decompressed,
and XML is parsed by `defusedxml` with DTDs, entities and external references forbidden.  Every
refusal is a `LoadError` naming the file (and member or element) and what was wrong.

Mapping decisions (see docs/refi-qda.md for the whole story):

* One REFI project has one codebook; it is named `refi` (`CODEBOOK`).  REFI codes nest, mmkg codes
  need a group: every code goes into the single group `codes` ("Codes"), and the nesting is kept
  in `parent_code_id`.  Codes are keyed on their normalised GUID (lower case, braces stripped),
  never on names: the same name under two parents is two codes.
* Source kinds: TextSource → `interview`, PictureSource → `drawing`, PDF/Audio/Video → `other`.
* Selections are segments (segment_id = normalised selection GUID; a repeated GUID gets `#2`, `#3`…).
  Text offsets become code-point offsets into the source's plain text with its BOM removed; NVivo
  counts UTF-16 code units, so its offsets are converted (detected by the project's `origin`).
  Picture and PDF regions become x, y, width, height; audio/video `begin`/`end` (milliseconds)
  are kept in start/end.  Codings placed on a whole source get a segment `<source guid>#whole`.
* Cases are participants (case variables are attributes).  A source in no case gets a participant
  of its own, flagged by the attribute `synthetic_participant` = `true`.
* Coders are user names (the GUID when a user is nameless or unknown).
* mmkg's own exports carry the study as a study folder in the member `mmkg/study.json`, with the SHA-256
  of every other member: when those all match, the study is read from it (the lossless path); when the
  REFI part changed, the file is read as plain REFI-QDA with a warning.
"""
from __future__ import annotations

import bisect
import hashlib
import io
import json
import re
import stat
import struct
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET
import pandas as pd

from mmkg.errors import LoadError, TooLargeError
from mmkg.tables import COLUMNS, StudyMeta, StudyTables

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
CODEBOOK = "refi"
GROUP_ID, GROUP_LABEL = "codes", "Codes"
SYNTHETIC_PARTICIPANT = "synthetic_participant"
ANALYSIS_CODER = "consensus"  # as for codings tables: a coder of this name gives the codings analyses use
PROVENANCE_PREFIX = "Provenance: "
# mmkg's export gives a quote without position (a Taguette highlight) a place in the text it writes, with this
# Description; reading mmkg's own export, such a selection is a segment with its text and no position again
MADE_UP_POSITION = "mmkg: quote without position; its place in this text was made up by the export"
# mmkg's export adds this member: the study as its study folder, with the SHA-256 of the REFI members it goes with
EMBEDDED_STUDY = "mmkg/study.json"
EMBEDDED_FORMAT = "mmkg study folder 1"
EMBEDDED_KEYS = ("format", "refi_sha256", "study_folder")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
WHERE = "_where"  # extra column: the XML element a row came from, used by validation messages

SOURCE_KINDS = {"TextSource": "interview", "PictureSource": "drawing", "PDFSource": "other",
                "AudioSource": "other", "VideoSource": "other"}
VARIABLE_TYPES = {"Text": "string", "Boolean": "bool", "Integer": "int", "Float": "float",
                  "Date": "string", "DateTime": "string"}
VALUE_ELEMENTS = ("TextValue", "BooleanValue", "IntegerValue", "FloatValue", "DateValue", "DateTimeValue")
NOT_IMPORTED = ("Note", "Link", "Set", "Graph", "Transcript", "SyncPoint", "NoteRef", "SelectionRef")
# Every element name of the REFI-QDA 1.0 project schema (Project-mrt2019.xsd) and the codebook schema.
KNOWN_ELEMENTS = frozenset("""
    AudioSelection AudioSource BooleanValue Case Cases Code CodeBook CodeRef Codes Coding DateTimeValue
    DateValue Description Edge FloatValue Graph Graphs IntegerValue Link Links MemberCode MemberNote
    MemberSource Note NoteRef Notes PDFSelection PDFSource PictureSelection PictureSource PlainTextContent
    PlainTextSelection Project Representation SelectionRef Set Sets SourceRef Sources SyncPoint
    TextDescription TextSource TextValue Transcript TranscriptSelection User Users Variable VariableRef
    VariableValue Variables Vertex VideoSelection VideoSource""".split())
MiB = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Ceilings for hostile input; exceeding one raises `TooLargeError` (a `LoadError`)."""

    max_file_bytes: int = 512 * MiB  # the .qdpx/.qde/.qdc file itself
    max_members: int = 10_000  # entries in the zip
    max_total_uncompressed: int = 1024 * MiB  # sum of declared member sizes
    max_member_bytes: int = 256 * MiB  # any one member
    max_ratio: float = 100.0  # uncompressed / compressed size of one member, and of the whole archive …
    ratio_min_bytes: int = 1 * MiB  # … checked for members (totals) larger than this
    max_xml_bytes: int = 128 * MiB  # the .qde/.qdc document
    max_embedded_study_bytes: int = 128 * MiB  # mmkg's own member `mmkg/study.json`
    max_attribute_chars: int = 1 * MiB  # any one XML attribute value
    max_depth: int = 256  # element nesting (codes nest)
    max_name_chars: int = 1024  # a member's whole name
    max_name_part_bytes: int = 255  # one folder or file name in it (NAME_MAX of common file systems)


# ----------------------------------------------------------------------------------------- entry point

def read_refi_qda(path, study_id: str | None = None, limits: ArchiveLimits = ArchiveLimits()) -> StudyTables:
    """Read a `.qdpx`, `.qde` or `.qdc` file into `StudyTables` (in memory; nothing is written)."""
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise TooLargeError(f"{path}: file is {size} bytes, more than the limit of {limits.max_file_bytes}")
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".qdpx" or (suffix not in (".qde", ".qdc") and data[:4] == b"PK\x03\x04"):
        archive = SafeArchive(path, data, limits)
        qde_name = archive.find_project()
        root = parse_xml(archive.read(qde_name, limits.max_xml_bytes), f"{path}, member {qde_name}", limits)
        embedded, warnings = _embedded_study(path, archive, limits, study_id)
        if embedded is not None:
            return embedded
        if root.tag == f"{{{CODEBOOK_NS}}}CodeBook":
            tables = _read_codebook(path, root, study_id)
        else:
            tables = _ProjectReader(path, root, limits, study_id, archive=archive, qde_name=qde_name).read()
        tables.warnings[:0] = warnings
        return tables
    if data[:4] == b"PK\x03\x04":
        raise LoadError(f"{path}: is a zip archive, but a '{suffix}' file must be plain XML "
                        "(rename it to .qdpx if it is a REFI-QDA project archive)")
    if len(data) > limits.max_xml_bytes:
        raise TooLargeError(f"{path}: XML document is {len(data)} bytes, more than the limit of "
                            f"{limits.max_xml_bytes}")
    root = parse_xml(data, str(path), limits)
    if root.tag == f"{{{CODEBOOK_NS}}}CodeBook":
        return _read_codebook(path, root, study_id)
    return _ProjectReader(path, root, limits, study_id).read()


def _embedded_study(path: Path, archive: SafeArchive, limits: ArchiveLimits,
                    study_id: str | None) -> tuple[StudyTables | None, list[str]]:
    """The study mmkg's export carried in `mmkg/study.json`, when the archive has that member and its REFI
    members are byte for byte those the member's digests name; else None, with a warning when the member is
    there but the REFI part changed (another tool edited the file: it is read as plain REFI-QDA).  A member
    that is too large, not JSON or not of the shape mmkg writes is a `LoadError` naming it."""
    from mmkg.loader.study_folder import META_FILE, TABLE_FILES, read_study_folder

    name = archive.lookup(EMBEDDED_STUDY)
    if name is None:
        return None, []
    where = f"{path}, member {name}"
    data = archive.read(name, limits.max_embedded_study_bytes)
    try:
        note = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise LoadError(f"{where}: not valid UTF-8 (mmkg writes this member as UTF-8 JSON)") from None
    except json.JSONDecodeError as exc:
        raise LoadError(f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(note, dict) or sorted(note) != sorted(EMBEDDED_KEYS):
        found = ", ".join(sorted(map(str, note))) if isinstance(note, dict) else type(note).__name__
        raise LoadError(f"{where}: expected a JSON object with the keys {', '.join(EMBEDDED_KEYS)} (as mmkg's "
                        f"export writes it); found {found or 'an empty object'}")
    if note["format"] != EMBEDDED_FORMAT:
        raise LoadError(f"{where}: key 'format' is {str(note['format'])[:80]!r}, not {EMBEDDED_FORMAT!r}; this "
                        "mmkg reads only that format (remove the member to read the file as plain REFI-QDA)")
    digests, files = note["refi_sha256"], note["study_folder"]
    if not isinstance(digests, dict) or not digests or not all(
            isinstance(v, str) and SHA256_HEX.fullmatch(v) for v in digests.values()):
        raise LoadError(f"{where}: key 'refi_sha256' must map each REFI-QDA member name to its SHA-256 "
                        "(64 lower-case hex digits)")
    allowed = {META_FILE, *TABLE_FILES.values()}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise LoadError(f"{where}: key 'study_folder' must map file names to their text")
    unknown = sorted(set(files) - allowed)
    if unknown:
        raise LoadError(f"{where}: key 'study_folder' names unknown file(s) {', '.join(unknown[:5])} "
                        f"(allowed: {', '.join(sorted(allowed))})")
    listed = {member_key(member): digest for member, digest in digests.items()}
    present = {key: info for key, info in archive.files.items() if key != member_key(EMBEDDED_STUDY)}
    changed = sorted(set(listed) ^ set(present))
    for key in sorted(set(listed) & set(present)):
        if hashlib.sha256(archive.read(present[key].filename, limits.max_member_bytes)).hexdigest() != listed[key]:
            changed.append(key)
    if changed:
        return None, [f"{where}: the REFI-QDA part of the archive is not the one mmkg wrote ({', '.join(changed[:3])}"
                      f"{' …' if len(changed) > 3 else ''} added, removed or changed: edited by another tool?); read "
                      "as plain REFI-QDA, so what only that member carries (codebooks, groups, ids, region texts, "
                      "text sections, preferred labels, the concept map) is not restored"]
    tables = read_study_folder(Path(f"{path}!{name}"), {file: text.encode("utf-8") for file, text in files.items()})
    if study_id:
        tables.meta.id = study_id
    return tables, []


# ----------------------------------------------------------------------------------------- hostile input

class SafeArchive:
    """A zip held in memory whose member list has passed the limits; members are read on demand.

    Refused before anything is decompressed: more members than `max_members` (counted in the central
    directory before it is parsed), names that escape a folder, are too long or clash (the same name twice
    once case, Unicode form and `\\` vs `/` are ignored, or one name both a file and a folder), links,
    devices and other special files, encrypted members, and sizes or compression ratios over the limits,
    per member and for the whole archive."""

    def __init__(self, path: Path, data: bytes, limits: ArchiveLimits):
        self.path, self.limits = path, limits
        bound = _central_directory_entries(data)
        if bound is not None and bound > limits.max_members:
            raise TooLargeError(f"{path}: archive has more than the limit of {limits.max_members} members")
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except Exception as exc:  # BadZipFile, LargeZipFile, struct.error, UnicodeDecodeError, EOFError …
            raise LoadError(f"{path}: not a readable zip archive ({type(exc).__name__}: {exc}); a .qdpx file is a "
                            "zip holding project.qde and a sources folder") from None
        if len(infos) > limits.max_members:
            raise TooLargeError(f"{path}: archive has {len(infos)} members, more than the limit of "
                                f"{limits.max_members}")
        total = 0
        self.members: dict[str, zipfile.ZipInfo] = {}  # member_key(name) → entry, files and folders
        files: set[str] = set()
        folders: set[str] = set()
        for info in infos:
            name = info.filename
            _check_member_name(path, name, limits)
            is_folder = _member_kind(path, info) == "folder"
            key = member_key(name)
            if not key:
                if is_folder:
                    continue  # "./" and the like name the archive's root
                raise LoadError(f"{path}, member {name!r}: names no file")
            if info.flag_bits & 0x1:
                raise LoadError(f"{path}, member {name}: is encrypted; mmkg reads unencrypted archives only")
            if info.file_size > limits.max_member_bytes:
                raise TooLargeError(f"{path}, member {name}: {info.file_size} bytes uncompressed, more than "
                                    f"the limit of {limits.max_member_bytes}")
            if info.file_size > limits.ratio_min_bytes and \
                    info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise TooLargeError(f"{path}, member {name}: compression ratio "
                                    f"{info.file_size / max(info.compress_size, 1):.0f}:1 exceeds the limit of "
                                    f"{limits.max_ratio:.0f}:1 (a zip bomb?)")
            total += info.file_size
            if total > limits.max_total_uncompressed:
                raise TooLargeError(f"{path}: members add up to more than {limits.max_total_uncompressed} "
                                    "bytes uncompressed")
            parents = _parents(key)
            clash = next((p for p in parents if p in files), None)
            if clash is not None:
                raise LoadError(f"{path}, member {name}: lies inside {self.members[clash].filename}, which is a "
                                "file, not a folder")
            if is_folder:
                if key in files:
                    raise LoadError(f"{path}, member {name}: is a folder, but {self.members[key].filename} is a "
                                    "file of the same name")
            elif key in files:
                raise LoadError(f"{path}: member {name} appears twice in the archive"
                                + (f" (as {self.members[key].filename})" if self.members[key].filename != name else ""))
            elif key in folders:
                raise LoadError(f"{path}, member {name}: is a file, but the archive also has a folder of that name")
            if is_folder:
                folders.add(key)
                self.members.setdefault(key, info)
            else:
                files.add(key)
                self.members[key] = info
            folders.update(parents)
        if total > limits.ratio_min_bytes and total > limits.max_ratio * max(len(data), 1):
            raise TooLargeError(f"{path}: members add up to {total:,} bytes uncompressed, "
                                f"{total / max(len(data), 1):.0f} times the archive's size; "
                                f"the limit is {limits.max_ratio:.0f}:1 (a zip bomb?)")
        self.files = {key: info for key, info in self.members.items() if key in files}

    def find_project(self) -> str:
        """The one `*.qde` member at the archive root (name matched case-insensitively)."""
        root_qde = [i.filename for key, i in self.files.items() if "/" not in key and key.endswith(".qde")]
        if len(root_qde) == 1:
            return root_qde[0]
        if root_qde:
            raise LoadError(f"{self.path}: archive holds {len(root_qde)} .qde files at its root "
                            f"({', '.join(sorted(root_qde))}); expected exactly one")
        nested = [i.filename for key, i in self.files.items() if key.endswith(".qde")]
        hint = f" (found {', '.join(nested[:3])} in a folder)" if nested else ""
        raise LoadError(f"{self.path}: no .qde project file at the archive root{hint}; "
                        "a .qdpx must hold project.qde")

    def lookup(self, name: str) -> str | None:
        """The member name of the file `name` (matched as `member_key` matches), or None."""
        info = self.files.get(member_key(name))
        return info.filename if info is not None else None

    def read(self, name: str, max_bytes: int) -> bytes:
        """Decompress one member, never more than `max_bytes` whatever its header claims."""
        info = self.files[member_key(name)]
        where = f"{self.path}, member {info.filename}"
        if info.file_size > max_bytes:
            raise TooLargeError(f"{where}: {info.file_size} bytes uncompressed, more than the limit of {max_bytes}")
        chunks, size = [], 0
        try:
            with self.zip.open(info) as stream:
                while chunk := stream.read(1024 * 1024):
                    size += len(chunk)
                    if size > max_bytes or size > info.file_size:
                        raise TooLargeError(f"{where}: decompresses to more than its declared size "
                                            f"{info.file_size} or the limit of {max_bytes} bytes")
                    chunks.append(chunk)
        except LoadError:
            raise
        except Exception as exc:  # BadZipFile (CRC), NotImplementedError (method), zlib.error, EOFError …
            raise LoadError(f"{where}: cannot be decompressed ({type(exc).__name__}: {exc})") from None
        return b"".join(chunks)


def member_key(name: str) -> str:
    """How archive names compare: `\\` as `/`, empty and `.` parts dropped, Unicode NFC, lower case (so a
    case-insensitive file system could hold every file of an accepted archive)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return unicodedata.normalize("NFC", "/".join(parts)).lower()


def _parents(key: str) -> list[str]:
    parts = key.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _member_kind(path: Path, info: zipfile.ZipInfo) -> str:
    """'file' or 'folder'; links, devices, pipes and sockets (Unix mode in the upper external attributes)
    are refused."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        what = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
                stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket"}.get(kind, f"a special file (mode {mode:o})")
        raise LoadError(f"{path}, member {info.filename}: is {what}; archives may hold only files and folders")
    return "folder" if info.filename.endswith(("/", "\\")) or kind == stat.S_IFDIR else "file"


def _central_directory_entries(data: bytes) -> int | None:
    """An upper bound on the entries `zipfile` will parse (entry signatures in the central directory), found
    without parsing it; None when the end record cannot be found (zipfile then says what is wrong)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return None
    size, offset = struct.unpack("<II", data[end + 12:end + 20])
    stop = end
    if size == 0xFFFFFFFF or offset == 0xFFFFFFFF:  # ZIP64: the sizes are in the ZIP64 end record
        locator = end - 20
        if locator < 0 or data[locator:locator + 4] != b"PK\x06\x07":
            return None
        record = struct.unpack("<Q", data[locator + 8:locator + 16])[0]
        if record + 56 > len(data) or data[record:record + 4] != b"PK\x06\x06":
            return None
        size = struct.unpack("<Q", data[record + 40:record + 48])[0]
        stop = record
    return data.count(b"PK\x01\x02", max(0, stop - size), stop)


def _check_member_name(path: Path, name: str, limits: ArchiveLimits) -> None:
    """Refuse member names that would escape an extraction folder (zip slip) or that no file system holds."""
    if "\x00" in name:
        raise LoadError(f"{path}: member name {name!r} contains a NUL byte")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise LoadError(f"{path}: member name {name!r} contains control characters")
    shown = name if len(name) <= 80 else name[:60] + "…"
    if len(name) > limits.max_name_chars:
        raise LoadError(f"{path}, member {shown}: name is {len(name)} characters long, more than the limit of "
                        f"{limits.max_name_chars}")
    parts = name.replace("\\", "/").split("/")
    long_part = next((p for p in parts if len(p.encode("utf-8")) > limits.max_name_part_bytes), None)
    if long_part is not None:
        raise LoadError(f"{path}, member {shown}: a part of its name is {len(long_part.encode('utf-8'))} bytes "
                        f"long, more than file systems allow ({limits.max_name_part_bytes})")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise LoadError(f"{path}, member {name}: absolute path in archive (refused: it points outside the archive)")
    if ".." in parts:
        raise LoadError(f"{path}, member {name}: path contains '..' (zip slip: it points outside the archive)")


_ENCODING_DECL = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def parse_xml(data: bytes, where: str, limits: ArchiveLimits) -> Element:
    """Parse untrusted XML: no DTD, no entities, no external references; UTF-8 checked; size, depth capped."""
    if len(data) > limits.max_xml_bytes:
        raise TooLargeError(f"{where}: XML document is {len(data)} bytes, more than the limit of "
                            f"{limits.max_xml_bytes}")
    if not data.strip():
        raise LoadError(f"{where}: is empty; expected a REFI-QDA XML document")
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        declared = _ENCODING_DECL.match(data.lstrip(b"\xef\xbb\xbf \t\r\n"))
        if declared is None or declared.group(1).lower() in (b"utf-8", b"utf8"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = data.count(b"\n", 0, exc.start) + 1
                raise LoadError(f"{where}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}, "
                                f"line {line})") from None
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise LoadError(f"{where}: contains a DTD (<!DOCTYPE …>); DTDs are refused in uploaded XML") from None
    except defusedxml.EntitiesForbidden as exc:
        raise LoadError(f"{where}: declares XML entity '{exc.name}'; entities are refused "
                        "(entity expansion attacks)") from None
    except defusedxml.ExternalReferenceForbidden as exc:
        raise LoadError(f"{where}: refers to an external resource ({exc.sysid}); refused") from None
    except defusedxml.DefusedXmlException as exc:
        raise LoadError(f"{where}: refused XML construct ({exc})") from None
    except ParseError as exc:
        raise LoadError(f"{where}: not well-formed XML ({exc})") from None
    except (ValueError, LookupError) as exc:  # unknown encoding name …
        raise LoadError(f"{where}: cannot be parsed as XML ({exc})") from None
    _check_tree(root, where, limits)
    return root


def _check_tree(root: Element, where: str, limits: ArchiveLimits) -> None:
    """Depth and attribute-size limits, checked without recursion."""
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > limits.max_depth:
            raise TooLargeError(f"{where}: elements nest deeper than {limits.max_depth} levels "
                                f"(at <{_local(element.tag)}>)")
        for name, value in element.attrib.items():
            if len(value) > limits.max_attribute_chars:
                raise TooLargeError(f"{where}: attribute {_local(name)} of <{_local(element.tag)}> is "
                                    f"{len(value)} characters, more than the limit of {limits.max_attribute_chars}")
        stack.extend((child, depth + 1) for child in element)


# ----------------------------------------------------------------------------------------- helpers

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else str(tag)


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def normalise_guid(value: str | None) -> str | None:
    """GUIDs compare case-insensitively and may come in braces; version bits are not checked."""
    if value is None:
        return None
    value = value.strip().strip("{}").strip().lower()
    return value or None


def slugify(text: str) -> str:
    """A study id: ASCII letters, digits, `_ . -`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", ascii_text).strip("-._").lower()[:100]


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text


_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def _int(element: Element, attribute: str) -> int | str | None:
    """An integer attribute; None when absent, its text when it is no integer (validation then names the
    element and the value)."""
    value = element.get(attribute)
    if value is None:
        return None
    return int(value) if _INTEGER.match(value.strip()) else value


def _decode_text_file(data: bytes) -> str:
    """Plain-text sources: UTF-8 (BOM stripped) or UTF-16 with a BOM; raises UnicodeDecodeError."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


class _Utf16Offsets:
    """Converts UTF-16 code-unit offsets (NVivo, .NET) to Python code-point offsets of one text."""

    def __init__(self, text: str):
        self.astral_starts: list[int] = []  # UTF-16 offset of every character outside the BMP
        seen = 0
        for index, char in enumerate(text):
            if ord(char) > 0xFFFF:
                self.astral_starts.append(index + seen)
                seen += 1
        self.length = len(text) + seen

    def to_code_points(self, offset: int) -> int:
        return offset - bisect.bisect_left(self.astral_starts, offset)


# ----------------------------------------------------------------------------------------- the project

class _ProjectReader:
    """Walks one `<Project>` element and fills the tables; collects warnings on the way."""

    def __init__(self, path: Path, root: Element, limits: ArchiveLimits, study_id: str | None,
                 archive: SafeArchive | None = None, qde_name: str | None = None):
        self.path, self.root, self.limits, self.study_id = path, root, limits, study_id
        self.archive, self.qde_name = archive, qde_name
        self.where = f"{path}, member {qde_name}" if qde_name else str(path)
        self.warnings: list[str] = []
        self.codes: dict[str, dict] = {}
        self.users: dict[str, str | None] = {}
        self.coder_names: dict[str, str] = {}
        self.sources: list[dict] = []
        self.source_ids: set[str] = set()
        self.segments: list[dict] = []
        self.codings: list[dict] = []
        self.source_values: dict[str, list[Element]] = {}
        self.segment_ids: Counter = Counter()
        self.texts: dict[Element, tuple[str, _Utf16Offsets | None] | None] = {}
        self.counts: Counter = Counter()  # things worth a warning, counted instead of listed
        self.missing_files: list[str] = []
        origin = root.get("origin") or ""
        self.utf16 = "nvivo" in origin.lower()
        self.own_export = origin.startswith("mmkg")

    def q(self, name: str) -> str:
        return f"{{{PROJECT_NS}}}{name}"

    def read(self) -> StudyTables:
        root = self.root
        if root.tag != self.q("Project"):
            found = _ns(root.tag) or "no namespace"
            raise LoadError(f"{self.where}: root element is <{_local(root.tag)}> in {found}; expected <Project> "
                            f"in namespace {PROJECT_NS} (REFI-QDA project) or <CodeBook> in {CODEBOOK_NS}")
        _warn_unknown_elements(root, PROJECT_NS, self.where, self.warnings)
        self._read_users(root.find(self.q("Users")))
        codebook = root.find(self.q("CodeBook"))
        codes = codebook.find(self.q("Codes")) if codebook is not None else None
        code_rows = _read_codes(codes, PROJECT_NS, self.where, self.warnings)
        self.codes = {row["code_id"]: row for row in code_rows}
        variables = _read_variables(root.find(self.q("Variables")), self.where)
        sources = root.find(self.q("Sources"))
        for element in (sources if sources is not None else []):
            self._read_source(element)
        participants, attributes = self._read_participants(root.find(self.q("Cases")), variables)
        self._summarise()
        return self._tables(code_rows, participants, attributes)

    # users and coders ------------------------------------------------------------------------

    def _read_users(self, users: Element | None) -> None:
        for user in (users if users is not None else []):
            guid = normalise_guid(user.get("guid"))
            if guid:
                self.users[guid] = (user.get("name") or "").strip() or None
        name_counts = Counter(name for name in self.users.values() if name)
        for guid, name in self.users.items():
            if not name:
                self.coder_names[guid] = guid
            elif name_counts[name] > 1:
                self.coder_names[guid] = f"{name} ({guid})"
                self.counts["shared user name"] += 1
            else:
                self.coder_names[guid] = name

    def _coder(self, guid_attr: str | None) -> str:
        guid = normalise_guid(guid_attr)
        if guid is None:
            self.counts["coding without creatingUser"] += 1
            return "unknown"
        if guid not in self.coder_names:
            self.counts["coding by a user not in <Users>"] += 1
            return guid
        return self.coder_names[guid]

    # sources, selections, codings ------------------------------------------------------------

    def _read_source(self, element: Element) -> None:
        kind_name = _local(element.tag)
        if kind_name not in SOURCE_KINDS or _ns(element.tag) != PROJECT_NS:
            return  # reported by _warn_unknown_elements
        guid = normalise_guid(element.get("guid"))
        if guid is None:
            raise LoadError(f"{self.where}: a <{kind_name}> has no guid")
        if guid in self.source_ids:
            raise LoadError(f"{self.where}: two sources share guid {guid}")
        path_attr = element.get("plainTextPath") or element.get("path") or ""
        title = (element.get("name") or "").strip() or PurePosixPath(path_attr.replace("\\", "/")).name or guid
        self.source_ids.add(guid)
        self.sources.append({"source_id": guid, "participant_id": None, "kind": SOURCE_KINDS[kind_name],
                             "title": title, WHERE: f"<{kind_name} guid={guid}>"})
        self.source_values[guid] = element.findall(self.q("VariableValue"))
        self._read_text_container(element, guid, element)
        for child in element:
            name = _local(child.tag)
            if name in ("PictureSelection", "PDFSelection"):
                self._region_selection(child, guid)
            elif name in ("AudioSelection", "VideoSelection"):
                self._add_segment(child, guid, start=_int(child, "begin"), end=_int(child, "end"))
            elif name in ("Representation", "TextDescription"):
                self._read_text_container(child, guid, child)
            elif name == "Transcript":
                for selection in child.findall(self.q("TranscriptSelection")):
                    self.counts["TranscriptSelection (imported without position)"] += 1
                    self._add_segment(selection, guid)
        whole = element.findall(self.q("Coding"))
        if whole:
            self._add_segment(element, guid, segment_id=f"{guid}#whole", codings=whole)
            self.counts["coding of a whole source (segment '<source guid>#whole')"] += len(whole)

    def _read_text_container(self, container: Element, source_id: str, text_owner: Element) -> None:
        for selection in container.findall(self.q("PlainTextSelection")):
            start, end = _int(selection, "startPosition"), _int(selection, "endPosition")
            text = None
            loaded = self._plain_text(text_owner)
            if loaded is not None and isinstance(start, int) and isinstance(end, int):
                full, utf16 = loaded
                length = utf16.length if utf16 else len(full)
                if 0 <= start <= end <= length:
                    if utf16:
                        start, end = utf16.to_code_points(start), utf16.to_code_points(end)
                    text = full[start:end].replace("\r\n", "\n")
                else:
                    self.counts["text selection outside its source text"] += 1
            if self.own_export and _text(selection.find(self.q("Description"))) == MADE_UP_POSITION:
                start = end = None
            self._add_segment(selection, source_id, start=start, end=end, text=text)

    def _plain_text(self, owner: Element) -> tuple[str, _Utf16Offsets | None] | None:
        """The plain text of a TextSource/Representation/TextDescription, or None (with a warning)."""
        if owner in self.texts:
            return self.texts[owner]
        result = None
        inline = owner.find(self.q("PlainTextContent"))
        path_attr = owner.get("plainTextPath")
        text: str | None = None
        if inline is not None and inline.text is not None:
            text = inline.text
        elif path_attr:
            text = self._archive_text(path_attr)
        else:
            self.counts["text source with neither plainTextPath nor PlainTextContent"] += 1
        if text is not None:
            result = (text, _Utf16Offsets(text) if self.utf16 else None)
        self.texts[owner] = result
        return result

    def _archive_text(self, path_attr: str) -> str | None:
        member = self._resolve(path_attr)
        if member is None:
            self.missing_files.append(path_attr)
            return None
        data = self.archive.read(member, self.limits.max_member_bytes)
        try:
            return _decode_text_file(data)
        except UnicodeDecodeError as exc:
            self.warnings.append(f"{self.path}, member {member}: not valid UTF-8 or UTF-16 at byte {exc.start}; "
                                 "its selections were imported without text")
            return None

    def _resolve(self, path_attr: str) -> str | None:
        """Find a referenced file in the archive: `internal://x`, `relative:///x` or a bare `x`,
        under `sources/` (any case) or at the root.  Paths with '..' or absolute paths never match."""
        if self.archive is None:
            return None
        reference = path_attr.strip().replace("\\", "/")
        lowered = reference.lower()
        for scheme in ("internal://", "relative://", "file://"):
            if lowered.startswith(scheme):
                reference = reference[len(scheme):]
                break
        reference = reference.lstrip("/")
        if not reference or ".." in reference.split("/"):
            return None
        for candidate in (f"sources/{reference}", reference):
            member = self.archive.lookup(candidate)
            if member is not None:
                return member
        return None

    def _region_selection(self, element: Element, source_id: str) -> None:
        corners = x1, y1, x2, y2 = tuple(_int(element, a) for a in ("firstX", "firstY", "secondX", "secondY"))
        region = {}
        if all(isinstance(c, int) for c in corners):
            region = {"x": min(x1, x2), "y": min(y1, y2), "width": abs(x2 - x1), "height": abs(y2 - y1)}
        elif any(isinstance(c, str) for c in corners):
            region = {"x": next(c for c in corners if isinstance(c, str))}  # not a number: validation says so
        else:
            self.counts["region selection with missing coordinates"] += 1
        text = None
        representation = element.find(self.q("Representation"))
        if representation is not None:
            text = _text(representation.find(self.q("PlainTextContent")))
        self._add_segment(element, source_id, text=text, **region)

    def _add_segment(self, element: Element, source_id: str, *, segment_id: str | None = None,
                     codings: list[Element] | None = None, start=None, end=None, x=None, y=None,
                     width=None, height=None, text=None) -> None:
        kind = _local(element.tag)
        if segment_id is None:
            guid = normalise_guid(element.get("guid"))
            if guid is None:
                raise LoadError(f"{self.where}: a <{kind}> in source {source_id} has no guid")
            self.segment_ids[guid] += 1
            segment_id = guid if self.segment_ids[guid] == 1 else f"{guid}#{self.segment_ids[guid]}"
            if self.segment_ids[guid] > 1:
                self.counts["selection GUID used twice (later ones get #2, #3…)"] += 1
        where = f"<{kind} guid={element.get('guid')}>"
        self.segments.append({"segment_id": segment_id, "source_id": source_id,
                              "start": _str(start), "end": _str(end), "x": _str(x), "y": _str(y),
                              "width": _str(width), "height": _str(height), "synthetic": "false",
                              "text": text, "text_section": None, WHERE: where})
        seen = set()
        for coding in (codings if codings is not None else element.findall(self.q("Coding"))):
            ref = coding.find(self.q("CodeRef"))
            code_id = normalise_guid(ref.get("targetGUID")) if ref is not None else None
            if code_id is None:
                self.counts["Coding without CodeRef"] += 1
                continue
            if code_id not in self.codes:
                self.counts["Coding whose CodeRef names no code of the codebook (dropped)"] += 1
                continue
            coder = self._coder(coding.get("creatingUser"))
            if (code_id, coder) in seen:
                self.counts["same code applied twice to one selection by one coder (kept once)"] += 1
                continue
            seen.add((code_id, coder))
            self.codings.append({"segment_id": segment_id, "codebook": CODEBOOK, "code_id": code_id,
                                 "coder": coder, WHERE: f"<Coding guid={coding.get('guid')}> in {where}"})

    # participants ----------------------------------------------------------------------------

    def _read_participants(self, cases: Element | None, variables: dict[str, tuple[str, str]]):
        """Cases → participants; sources outside every case get a synthetic participant each."""
        participants: list[dict] = []
        attributes: dict[str, str] = {}  # column → type
        columns = _attribute_columns(variables, self.warnings, self.where)
        by_source: dict[str, str] = {}
        for number, case in enumerate(cases if cases is not None else [], start=1):
            if _local(case.tag) != "Case":
                continue
            guid = normalise_guid(case.get("guid"))
            if guid is None:
                raise LoadError(f"{self.where}: <Case> number {number} has no guid")
            label = (case.get("name") or "").strip()
            if not label:
                label = f"Case {number}"
                self.counts["nameless Case (labelled 'Case N')"] += 1
            row = {"participant_id": guid, "label": label, WHERE: f"<Case guid={case.get('guid')}>"}
            self._apply_values(row, case.findall(self.q("VariableValue")), variables, columns, attributes)
            participants.append(row)
            for ref in case.findall(self.q("SourceRef")):
                source_id = normalise_guid(ref.get("targetGUID"))
                if source_id in by_source and by_source[source_id] != guid:
                    self.counts["source in more than one Case (first Case kept)"] += 1
                    continue
                by_source.setdefault(source_id, guid)
            if case.find(self.q("CodeRef")) is not None or case.find(self.q("SelectionRef")) is not None:
                self.counts["Case with CodeRef/SelectionRef (not imported)"] += 1
        dangling = set(by_source) - self.source_ids
        if dangling:
            self.counts["Case SourceRef naming no source"] += len(dangling)
        by_id = {row["participant_id"]: row for row in participants}
        synthetic = 0
        for source in self.sources:
            owner = by_source.get(source["source_id"])
            if owner is None:
                owner = source["source_id"]
                row = {"participant_id": owner, "label": source["title"], SYNTHETIC_PARTICIPANT: "true",
                       WHERE: f"participant made for {source[WHERE]}"}
                participants.append(row)
                by_id[owner] = row
                synthetic += 1
            source["participant_id"] = owner
            self._apply_values(by_id[owner], self.source_values.get(source["source_id"], []), variables,
                               columns, attributes, from_source=True)
        if synthetic:
            attributes[SYNTHETIC_PARTICIPANT] = "bool"
            for row in participants:
                row.setdefault(SYNTHETIC_PARTICIPANT, "false")
            self.warnings.append(f"{self.where}: {synthetic} source(s) belong to no Case; each got a participant of "
                                 f"its own (attribute {SYNTHETIC_PARTICIPANT} = true)")
        return participants, attributes

    def _apply_values(self, row: dict, values: list[Element], variables, columns, attributes,
                      from_source: bool = False) -> None:
        for value in values:
            ref = value.find(self.q("VariableRef"))
            variable = normalise_guid(ref.get("targetGUID")) if ref is not None else None
            if variable not in variables:
                self.counts["VariableValue naming no Variable"] += 1
                continue
            cell = None
            for name in VALUE_ELEMENTS:
                found = value.find(self.q(name))
                if found is not None and found.text is not None:
                    cell = found.text.strip()
            column = columns[variable]
            if column in row and row[column] not in (None, cell):
                self.counts["conflicting variable values for one participant (first kept)"] += 1
                continue
            row[column] = cell
            attributes[column] = variables[variable][1]
            if from_source:
                self.counts["source variable values given to the source's participant"] += 1

    # warnings and tables -----------------------------------------------------------------------

    def _summarise(self) -> None:
        missing = self.missing_files
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            where = "the archive" if self.archive is not None else "a bare .qde (pack it as .qdpx to import text)"
            self.warnings.append(f"{self.where}: {len(missing)} plain-text file(s) not found in {where} ({shown}); "
                                 "their selections keep the tool's offsets and have no text")
        for what, n in sorted(self.counts.items()):
            self.warnings.append(f"{self.where}: {n} × {what}")

    def _tables(self, code_rows, participants, attributes) -> StudyTables:
        root = self.root
        name = (root.get("name") or "").strip()
        origin = (root.get("origin") or "").strip()
        study_id = self.study_id or _default_study_id(name, self.path)
        member = f"{self.path}!{self.qde_name}" if self.qde_name else str(self.path)
        description, provenance = _split_provenance(_text(root.find(self.q("Description"))) or "")
        exported = f"REFI-QDA project exported by {origin or 'an unnamed tool'} ({self.path.name})"
        coders = {row["coder"] for row in self.codings}
        meta = StudyMeta(
            id=study_id, title=name or self.path.stem, description=description,
            # mmkg's own export carries the study's notice: kept as it is, so export → import is the identity
            provenance=provenance if provenance and origin.startswith("mmkg") else
            f"{provenance} [{exported}]" if provenance else exported,
            codebooks=[CODEBOOK], participant_attributes=attributes, origin=str(self.path),
            analysis_coder=ANALYSIS_CODER if ANALYSIS_CODER in coders else "")
        participant_columns = COLUMNS["participants"] + list(attributes) + [WHERE]
        return StudyTables(
            meta=meta, groups=_groups(), codes=_frame(code_rows, "codes"),
            participants=pd.DataFrame(participants, columns=participant_columns).astype(object)
            .where(lambda f: f.notna(), None),
            sources=_frame(self.sources, "sources"), segments=_frame(self.segments, "segments"),
            codings=_frame(self.codings, "codings"),
            files={table: member for table in ("groups", "codes", "participants", "sources", "segments", "codings")},
            warnings=self.warnings)


def _split_provenance(description: str) -> tuple[str, str]:
    """(description, provenance notice): a last paragraph `Provenance: …` (as mmkg's exports write) is
    the study's provenance notice, so a shipped study keeps it through a REFI-QDA round trip."""
    head, _, last = description.rpartition("\n\n")
    if last.startswith(PROVENANCE_PREFIX):
        return head, last[len(PROVENANCE_PREFIX):].strip()
    if description.startswith(PROVENANCE_PREFIX):
        return "", description[len(PROVENANCE_PREFIX):].strip()
    return description, ""


def _str(value) -> str | None:
    return None if value is None else str(value)


def _frame(rows: list[dict], table: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS[table] + [WHERE]).astype(object)
    return frame.where(frame.notna(), None)


def _groups() -> pd.DataFrame:
    return pd.DataFrame([{"codebook": CODEBOOK, "group_id": GROUP_ID, "label": GROUP_LABEL,
                          "parent_group_id": None}], columns=COLUMNS["groups"]).astype(object)


def _default_study_id(project_name: str, path: Path) -> str:
    """The project name slugified; the file name when the name is empty or a tool default ('Untitled')."""
    slug = slugify(project_name)
    if not slug or slug in ("untitled", "project", "new-project"):
        slug = slugify(path.stem)
    return slug or "refi-study"


def _warn_unknown_elements(root: Element, ns: str, where: str, warnings: list[str]) -> None:
    """One warning listing elements outside the REFI-QDA vocabulary, one listing those read but not imported."""
    unknown: Counter = Counter()
    not_imported: Counter = Counter()
    stack = [root]
    while stack:
        element = stack.pop()
        name = _local(element.tag)
        if _ns(element.tag) != ns or name not in KNOWN_ELEMENTS:
            unknown[name if _ns(element.tag) == ns else element.tag] += 1
            continue  # nothing inside an unknown element is read
        if name in NOT_IMPORTED:
            not_imported[name] += 1
        if name == "Sets":
            not_imported["Set"] += sum(1 for child in element if child.tag == f"{{{ns}}}Set")
            continue  # members of sets are not imported either
        stack.extend(element)
    if unknown:
        listed = ", ".join(f"{n} × <{tag}>" for tag, n in sorted(unknown.items()))
        warnings.append(f"{where}: ignored element(s) outside the REFI-QDA 1.0 schema: {listed}")
    if not_imported:
        listed = ", ".join(f"{n} × {tag}" for tag, n in sorted(not_imported.items()))
        warnings.append(f"{where}: read but not imported: {listed}")


def _read_codes(codes: Element | None, ns: str, where: str, warnings: list[str]) -> list[dict]:
    """Nested <Code> elements → code rows (GUID keys, parent GUIDs), in document order."""
    rows: list[dict] = []
    if codes is None:
        return rows
    names: dict[str, str] = {}
    stack = [(child, None) for child in reversed(list(codes))]
    while stack:
        element, parent = stack.pop()
        if element.tag != f"{{{ns}}}Code":
            continue  # other elements are reported by the unknown-element scan
        guid = normalise_guid(element.get("guid"))
        name = element.get("name")
        if guid is None:
            raise LoadError(f"{where}: a <Code> named {name!r} has no guid")
        if guid in names:
            raise LoadError(f"{where}: two codes share guid {guid} ({names[guid]!r} and {name!r}); "
                            "codes are keyed on GUIDs, so this project is ambiguous")
        if not (name or "").strip():
            warnings.append(f"{where}: <Code guid={element.get('guid')}> has no name; its GUID is its label")
            name = guid
        names[guid] = name
        codable_attr = (element.get("isCodable") or "").strip().lower()
        if codable_attr not in ("true", "false", "1", "0"):
            warnings.append(f"{where}: <Code guid={element.get('guid')}> has isCodable={element.get('isCodable')!r}; "
                            "taken as codable")
        codable = "false" if codable_attr in ("false", "0") else "true"
        rows.append({"codebook": CODEBOOK, "code_id": guid, "label": name, "group_id": GROUP_ID,
                     "parent_code_id": parent, "codable": codable, "preferred_label": None,
                     "definition": _text(element.find(f"{{{ns}}}Description")),
                     WHERE: f"<Code guid={element.get('guid')}>"})
        stack.extend((child, guid) for child in reversed(list(element)))
    return rows


def _read_variables(variables: Element | None, where: str) -> dict[str, tuple[str, str]]:
    """Variable GUID → (name, mmkg attribute type)."""
    result: dict[str, tuple[str, str]] = {}
    for variable in (variables if variables is not None else []):
        guid = normalise_guid(variable.get("guid"))
        name = (variable.get("name") or "").strip()
        if guid is None or not name:
            raise LoadError(f"{where}: a <Variable> lacks its guid or name (guid={variable.get('guid')!r}, "
                            f"name={variable.get('name')!r})")
        result[guid] = (name, VARIABLE_TYPES.get(variable.get("typeOfVariable", "Text"), "string"))
    return result


def _attribute_columns(variables: dict[str, tuple[str, str]], warnings: list[str], where: str) -> dict[str, str]:
    """Variable GUID → participants column; names clashing with fixed columns or each other are renamed."""
    # a Boolean variable named synthetic_participant (mmkg's own exports write one) is that flag itself
    taken = set(COLUMNS["participants"]) | {WHERE} | \
        ({SYNTHETIC_PARTICIPANT} if any(name == SYNTHETIC_PARTICIPANT and kind != "bool"
                                    for name, kind in variables.values()) else set())
    columns: dict[str, str] = {}
    for guid, (name, _) in variables.items():
        column, number = name, 2
        while column in taken:
            column = f"{name}_{number}"
            number += 1
        if column != name:
            warnings.append(f"{where}: variable {name!r} is imported as attribute {column!r} (name already taken)")
        taken.add(column)
        columns[guid] = column
    return columns


# ----------------------------------------------------------------------------------------- codebooks

def _read_codebook(path: Path, root: Element, study_id: str | None) -> StudyTables:
    """A `.qdc` codebook: codes and the one group, no participants, sources or codings."""
    warnings: list[str] = [f"{path}: a codebook holds codes only; the study has no sources or codings"]
    _warn_unknown_elements(root, CODEBOOK_NS, str(path), warnings)
    codes = _read_codes(root.find(f"{{{CODEBOOK_NS}}}Codes"), CODEBOOK_NS, str(path), warnings)
    origin = (root.get("origin") or "").strip()
    meta = StudyMeta(id=study_id or slugify(path.stem) or "refi-codebook", title=path.stem,
                     provenance=f"REFI-QDA codebook exported by {origin or 'an unnamed tool'} ({path.name})",
                     codebooks=[CODEBOOK], origin=str(path))
    empty = {name: _frame([], name) for name in ("sources", "segments", "codings")}
    participants = pd.DataFrame(columns=COLUMNS["participants"]).astype(object)
    return StudyTables(meta=meta, groups=_groups(), codes=_frame(codes, "codes"), participants=participants,
                       files={"groups": str(path), "codes": str(path)}, warnings=warnings, **empty)
