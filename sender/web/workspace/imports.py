"""The upload's Flask side: the request body read in chunks, and the import handed off.

The app refuses bodies over 32 MB (MAX_CONTENT_LENGTH); this route alone
raises the limit to UPLOAD_MAX_BYTES and reads the multipart body itself, a
chunk at a time, straight into sender.audience.import_runs.save_upload, so a
1 GB export never sits in memory. The form's CSRF token comes before the file
and is checked before a byte of the file is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import request
from flask_wtf.csrf import validate_csrf
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from wtforms import ValidationError  # type: ignore[import-untyped]

from sender.audience.import_runs import check_filename, run_import, save_upload, start_run
from sender.celery_app import IMPORT_TASK
from sender.core.errors import InvalidInput
from sender.staff.audit import Actor
from sender.web import context
from sender.web.workspace.background import actor_args, run_in_background

CHUNK_BYTES = 1024 * 1024
FORM_SLACK = 64 * 1024  # the multipart framing and the small fields around the file
FILE_FIELD = "file"


@dataclass(frozen=True)
class Upload:
    path: Path
    filename: str


def _events(decoder: MultipartDecoder) -> Iterator[Field | File | Data]:
    stream = request.stream
    while True:
        chunk = stream.read(CHUNK_BYTES)
        decoder.receive_data(chunk or None)
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                break
            if isinstance(event, Epilogue):
                return
            if isinstance(event, Field | File | Data):
                yield event
        if not chunk:
            return


def _text(parts: list[bytes]) -> str:
    return b"".join(parts).decode("utf-8", "replace")


def _file_chunks(events: Iterator[Field | File | Data]) -> Iterator[bytes]:
    for event in events:
        if not isinstance(event, Data):
            return
        yield event.data
        if not event.more_data:
            return


def receive_upload(limit: int) -> Upload:
    """Stream the form's file to the upload folder; InvalidInput for a bad form or file."""
    length = request.content_length
    if length is not None and length > limit + FORM_SLACK:
        raise InvalidInput(f"the file is larger than the limit of {limit // 1024**2:,} MB")
    request.max_content_length = limit + FORM_SLACK
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    boundary = options.get("boundary")
    if mimetype != "multipart/form-data" or not boundary:
        raise InvalidInput("send the file with the upload form")
    # The decoder's bound is on its buffer: one chunk, plus what it keeps between two.
    decoder = MultipartDecoder(boundary.encode(), max_form_memory_size=2 * CHUNK_BYTES)
    events = _events(decoder)
    fields: dict[str, list[bytes]] = {}
    current: list[bytes] | None = None
    for event in events:
        if isinstance(event, Field):
            current = fields.setdefault(event.name, [])
        elif isinstance(event, Data) and current is not None:
            current.append(event.data)
            if sum(map(len, current)) > FORM_SLACK:
                raise InvalidInput("a form field is too long")
        elif isinstance(event, File) and event.name != FILE_FIELD:
            current = None
        elif isinstance(event, File):
            _check_token(_text(fields.get("csrf_token", [])))
            name = check_filename(event.filename)
            folder = context.settings().upload_dir
            return Upload(save_upload(_file_chunks(events), folder, limit), name)
    raise InvalidInput("choose a CSV file to upload")


def _check_token(token: str) -> None:
    try:
        validate_csrf(token)
    except ValidationError as error:
        detail = f"the form has expired or was not ours ({error}); reload the page"
        raise InvalidInput(detail) from None


def start_import(upload: Upload, actor: Actor) -> int:
    """Queue the run: a Celery worker when Redis is configured, a thread here otherwise."""
    engine, folder = context.engine(), context.settings().upload_dir
    run_id = start_run(engine, upload.path, upload.filename, actor)
    run_in_background(
        IMPORT_TASK,
        [run_id, *actor_args(actor)],
        lambda: run_import(engine, folder, run_id, actor),
        f"import-{run_id}",
    )
    return run_id
