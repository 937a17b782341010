"""Uploads: a study sent as the request body, checked (token, size, archive limits) and loaded atomically."""
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
UPLOAD_SUFFIXES = {".zip": "a zipped study folder", **reader_suffixes()}
router = APIRouter(tags=["studies"])


@router.post("/api/studies", response_model=LoadResult, status_code=201,
                responses=UPLOAD_ERRORS, openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_study(request: Request,
                       filename: str = Query(..., min_length=1, max_length=255, description=(
                           "name of the uploaded file; its ending says what it is: "
                           + ", ".join(f"{k} ({v})" for k, v in UPLOAD_SUFFIXES.items()))),
                       study_id: str | None = Query(None, min_length=1, max_length=64,
                                                    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                                    description="load under this study id"),
                       graphs: GraphHolder = Depends(holder), config: Settings = Depends(settings)):
    """Load a study sent as the raw request body (bearer token required; off unless MMKG_UPLOAD_TOKEN is
    set). The load is atomic: it replaces the study of the same id, or changes nothing."""
    _check_token(request, config)
    _remove_abandoned_uploads()
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise LoadError(f"cannot load '{filename}': expected one of {', '.join(UPLOAD_SUFFIXES)}")
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"{UPLOAD_PREFIX}{os.getpid()}-"))  # private (0700), removed below
    except OSError as exc:
        raise _temporary_folder_error(exc) from None
    try:
        upload = workdir / ("upload" + suffix)
        try:
            await _receive(request, upload, config.max_upload_bytes)
        except OSError as exc:
            raise _temporary_folder_error(exc) from None
        prepare = (lambda: _unpack(upload, workdir)) if suffix == ".zip" else None
        report = await run_in_threadpool(graphs.load, upload, study_id, prepare)
    except MmkgError as exc:  # name the client's file, not the server's temporary folder
        hidden = [(f"{workdir}/upload{suffix}", Path(filename).name), (f"{workdir}/", "")]
        for private, shown in hidden:
            exc.message = exc.message.replace(private, shown)
            exc.details = [d.replace(private, shown) for d in exc.details]
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return JSONResponse({"study_id": report.study_id, "counts": report.counts, "seconds": report.seconds,
                         "warnings": report.warnings, "provenance": report.provenance}, status_code=201)


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
