"""Uploads: a study sent as a multipart form (`curl -F file=@x`) or as the raw request body, checked (token,
size, archive limits) and loaded atomically; the browser's upload page (`/upload`) sends the same form."""
from __future__ import annotations

import errno
import hmac
import os
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mmkg.config import Settings
from mmkg.errors import (
    LoadError,
    MmkgError,
    NoSpaceError,
    StoreError,
    TooLargeError,
    UnauthorizedError,
    UploadsDisabledError,
)
from mmkg.loader import suffixes as reader_suffixes
from mmkg.server.dependencies import holder, settings
from mmkg.server.errors import UPLOAD_ERRORS
from mmkg.server.holder import GraphHolder
from mmkg.server.models import LoadResult


# a zipped study folder, then every file format the loader registers (`mmkg.loader.READERS`)
def upload_suffixes() -> dict[str, str]:
    """The file endings an upload accepts, with what each is: a zip, then every reader registered now."""
    return {".zip": "a zipped study folder", **reader_suffixes()}
router = APIRouter(tags=["studies"])


STUDY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
FILE_FIELD = "file"  # the form field that carries the study file (`curl -F file=@study.qdpx`)


@router.post("/api/studies", response_model=LoadResult, status_code=201,
                responses={**UPLOAD_ERRORS, 200: {"model": LoadResult, "description": "replaced the study of that "
                                                  "id (replace=true); `replaced_codings` says what it held"},
                           409: {"description": "a study of that id exists (send replace=true)"}},
                openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "required": [FILE_FIELD], "properties": {
                     FILE_FIELD: {"type": "string", "format": "binary"}, "study_id": {"type": "string"},
                     "replace": {"type": "boolean"}}}},
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_study(request: Request,
                       filename: str | None = Query(None, min_length=1, max_length=255, description=(
                           "name of a file sent as the raw body (a form upload carries its own); its ending says "
                           "what it is: " + ", ".join(f"{k} ({v})" for k, v in upload_suffixes().items()))),
                       study_id: str | None = Query(None, min_length=1, max_length=64, pattern=STUDY_ID_PATTERN,
                                                    description="load under this study id (omitted: the id the "
                                                    "file gives: study.json, the REFI-QDA project name, the codings "
                                                    "table's study_id column or the file name)"),
                       replace: bool = Query(False, description="replace a study of the same id (else 409)"),
                       graphs: GraphHolder = Depends(holder), config: Settings = Depends(settings)):
    """Load a study sent as a multipart form (field `file`, optional fields `study_id` and `replace`) or as the
    raw request body with `?filename=` (bearer token required; off unless MMKG_UPLOAD_TOKEN is set). A study
    id that is in the store already is refused with 409 unless `replace=true`. The load is atomic: it writes
    the whole study, or changes nothing."""
    _check_token(request, config)
    _remove_abandoned_uploads()
    form = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
    if not form and filename is None:
        raise LoadError("send the study as a form field 'file' (curl -F file=@study.qdpx) or as the raw body "
                        "with ?filename=<name>")
    if filename is not None:
        _check_suffix(filename)
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"{UPLOAD_PREFIX}{os.getpid()}-"))  # private (0700), removed below
    except OSError as exc:
        raise _temporary_folder_error(exc) from None
    upload = workdir / "body"
    try:
        try:
            await _receive(request, upload, config.max_upload_bytes)
            if form:
                filename, fields = await _read_form(request, upload, workdir)
                study_id = study_id or _form_study_id(fields)
                replace = replace or fields.get("replace", "").strip().lower() in ("true", "1", "yes", "on")
                upload = workdir / "form-file"
            assert filename is not None
            named = workdir / _safe_name(filename)
            upload.rename(named)
            upload = named
        except OSError as exc:
            raise _temporary_folder_error(exc) from None
        prepare = (lambda: _unpack(upload, workdir)) if upload.suffix == ".zip" else None
        report = await run_in_threadpool(graphs.load, upload, study_id, prepare, replace)
    except MmkgError as exc:  # name the client's file, not the server's temporary folder
        hidden = [(str(upload), Path(filename or "upload").name), (f"{workdir}/", "")]
        for private, shown in hidden:
            exc.message = exc.message.replace(private, shown)
            exc.details = [d.replace(private, shown) for d in exc.details]
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return JSONResponse({"study_id": report.study_id, "counts": report.counts, "seconds": report.seconds,
                         "warnings": report.warnings, "provenance": report.provenance,
                         "replaced_codings": report.replaced_codings},
                        status_code=201 if report.replaced_codings is None else 200)


@router.get("/upload", include_in_schema=False)
async def upload_page():
    """A page with a form that uploads a study (for people who do not use curl)."""
    from fastapi.responses import HTMLResponse

    from mmkg.server.render import render_upload_page

    return HTMLResponse(render_upload_page(upload_suffixes()))


def _check_suffix(filename: str) -> None:
    suffix = Path(filename).suffix.lower()
    accepted = upload_suffixes()
    if suffix not in accepted:
        raise LoadError(f"cannot load '{Path(filename).name}': expected one of {', '.join(accepted)}")


def _safe_name(filename: str) -> str:
    """The client's file name as a plain name in the upload folder: readers that name a study after its file
    (a Taguette export, a REFI-QDA codebook) see the client's name, never a path."""
    from mmkg.loader.refi_qda import slugify

    path = Path(filename.replace("\\", "/"))
    return (slugify(path.stem) or "upload") + path.suffix.lower()


def _form_study_id(fields: dict[str, str]) -> str | None:
    import re

    value = fields.get("study_id", "").strip()
    if not value:
        return None
    if len(value) > 64 or not re.match(STUDY_ID_PATTERN, value):
        raise LoadError(f"form field study_id '{value[:64]}': use letters, digits and _ . - (at most 64, "
                        "starting with a letter or digit)")
    return value


async def _read_form(request: Request, body: Path, workdir: Path) -> tuple[str, dict[str, str]]:
    """Parse the multipart body saved in `body`: the file of field `file` goes to `workdir/form-file`;
    returns its file name and the other (text) fields."""
    from starlette.datastructures import UploadFile
    from starlette.requests import Request as BodyRequest

    with body.open("rb") as source:
        async def receive() -> dict:
            chunk = source.read(1 << 20)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

        try:
            form = await BodyRequest(request.scope, receive).form(max_files=1, max_fields=16)
        except Exception as exc:  # starlette's MultiPartException and the parser's errors: a malformed form
            raise LoadError(f"cannot read the multipart form: {exc}") from None
        try:
            part = form.get(FILE_FIELD)
            if not isinstance(part, UploadFile):
                raise LoadError(f"the form has no file field '{FILE_FIELD}' (curl -F {FILE_FIELD}=@study.qdpx)")
            name = part.filename or ""
            if not name:
                raise LoadError(f"the form's field '{FILE_FIELD}' has no file name; its ending says what it is")
            _check_suffix(name)
            with (workdir / "form-file").open("wb") as out:
                while chunk := await part.read(1 << 20):
                    out.write(chunk)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        finally:
            await form.close()
    body.unlink()
    return name, fields


def _check_token(request: Request, settings: Settings) -> None:
    token = settings.upload_token.get_secret_value() if settings.upload_token else ""
    if not token:
        raise UploadsDisabledError("uploads are off: set MMKG_UPLOAD_TOKEN on the server to allow them")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise UnauthorizedError("a valid 'Authorization: Bearer <token>' header is required to upload")


async def _receive(request: Request, target: Path, limit: int) -> None:
    """Stream the request body to `target`, refusing it as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"upload of {int(declared):,} bytes exceeds the limit of {limit:,} bytes "
                            "(MMKG_MAX_UPLOAD_BYTES)")
    size = 0
    with target.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLargeError(f"upload exceeds the limit of {limit:,} bytes (MMKG_MAX_UPLOAD_BYTES)")
            out.write(chunk)
    if size == 0:
        raise LoadError("the upload is empty: send the file as the request body")


def _unpack(upload: Path, workdir: Path) -> Path:
    """Write the files a study folder has (study.json and its CSV tables) out of a zipped study into
    `workdir`; return the folder. The whole archive is checked first (`SafeArchive`: member count, names,
    links and devices, clashes, sizes and ratios per member and in total); nothing else is extracted."""
    from mmkg.loader.refi_qda import ArchiveLimits, MiB, SafeArchive
    from mmkg.loader.study_folder import META_FILE, TABLE_FILES

    limits = ArchiveLimits(max_members=1_000, max_total_uncompressed=512 * MiB)
    archive = SafeArchive(upload, upload.read_bytes(), limits)
    metas = sorted((key for key in archive.files if key.rsplit("/", 1)[-1] == META_FILE),
                   key=lambda key: (key.count("/"), key))
    if not metas:
        raise LoadError(f"{upload.name}: the zip holds no study.json; zip a study folder (see docs/study-format.md)")
    if len(metas) > 1 and metas[1].count("/") == metas[0].count("/"):
        raise LoadError(f"{upload.name}: the zip holds several study folders ({', '.join(metas[:3])}); "
                        "upload one study at a time")
    folder = metas[0][:-len(META_FILE)]
    target = workdir / "study"
    target.mkdir()
    for filename in [META_FILE, *TABLE_FILES.values()]:
        member = archive.lookup(folder + filename)
        if member is None:
            continue  # the study folder reader says which file is missing
        data = archive.read(member, limits.max_member_bytes)
        try:
            (target / filename).write_bytes(data)
        except OSError as exc:
            raise _temporary_folder_error(exc) from None
    return target


UPLOAD_PREFIX = "mmkg-upload-"


def _remove_abandoned_uploads() -> None:
    """Remove the temporary folders of uploads whose server process died (kill -9) before removing them."""
    if os.name != "posix":
        return
    for folder in Path(tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}*-*"):
        pid = folder.name[len(UPLOAD_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # alive, under another user


def _temporary_folder_error(exc: OSError) -> MmkgError:
    """An upload that cannot be kept in the temporary folder: nothing reached the store."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceError(f"the server's temporary folder is full ({exc.strerror}); the upload was not "
                            "loaded and nothing was written")
    return StoreError(f"the server cannot keep the upload in its temporary folder ({exc.strerror}); nothing "
                      "was written")
