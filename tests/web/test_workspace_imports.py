"""The workspace's CSV upload: streamed to disk, imported in the background, audited."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from supporters_fixtures import PAGE, changes, import_over, runs, signed_in
from web_fixtures import csrf_token
from werkzeug.test import TestResponse

from sender.audience.import_runs import read_run
from sender.core.db import session_scope
from sender.core.models import Supporter
from sender.core.vocabulary import ImportState
from sender.staff.roles import Role

UPLOAD = "/workspace/supporters/imports"
GOOD_CSV = (
    "email,first_name,country\n"
    "amira@example.org,Amira,EG\n"
    "bruno@example.org,Bruno,BR\n"
    'not-an-address,=HYPERLINK("http://x"),FR\n'
    "AMIRA@example.org,Amira again,EG\n"
    "chen@example.org,Chen,CN\n"
)


def supporters(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Supporter)) or 0)


def send(
    client: FlaskClient, body: bytes, name: str = "crm.csv", token: str | None = None
) -> TestResponse:
    data = {"csrf_token": csrf_token(client, PAGE) if token is None else token}
    return client.post(
        UPLOAD,
        data={**data, "file": (io.BytesIO(body), name)},
        content_type="multipart/form-data",
    )


def run_id_of(location: str) -> int:
    match = re.search(r"/imports/(\d+)$", location)
    assert match, location
    return int(match.group(1))


def test_an_upload_is_imported_in_the_background_with_a_summary(
    pg_engine: Engine, tmp_path: Path
) -> None:
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    response = send(client, GOOD_CSV.encode())
    assert response.status_code == 303
    run_id = run_id_of(response.headers["Location"])
    import_over(pg_engine, run_id)

    run = read_run(pg_engine, run_id)
    assert run.status is ImportState.DONE, run.problem
    assert (run.rows, run.imported, run.rejected_total) == (5, 3, 2)
    assert dict(run.rejected) == {"invalid_email": 1, "duplicate_in_file": 1}
    assert supporters(pg_engine) == 3
    # The upload itself is gone; the rejected rows stay for the download.
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"import-{run_id}.rejected.csv"]

    page = client.get(f"/workspace/supporters/imports/{run_id}").get_data(as_text=True)
    assert "Import finished" in page and "rejected: invalid_email" in page
    recent = client.get(PAGE).get_data(as_text=True)
    assert f'href="/workspace/supporters/imports/{run_id}"' in recent and "crm.csv" in recent
    fragment = client.get(f"/workspace/supporters/imports/{run_id}/progress").get_data(as_text=True)
    assert 'data-state="done"' in fragment and "hx-get" not in fragment  # polling stops

    rejected = client.get(f"/workspace/supporters/imports/{run_id}/rejected.csv")
    assert rejected.status_code == 200 and rejected.mimetype == "text/csv"
    text = rejected.get_data(as_text=True)
    assert "not-an-address" in text and "'=HYPERLINK" in text  # formula neutralised
    assert "duplicate_in_file" in text and "bruno@" not in text

    (entry,) = changes(pg_engine, "supporters.import")
    assert (entry.actor, entry.outcome, entry.target) == ("omar@example.org", "done", "crm.csv")
    assert entry.detail is not None and "3 imported" in entry.detail
    assert "amira" not in (entry.detail or "")


def test_a_page_that_is_not_finished_keeps_polling(pg_engine: Engine, tmp_path: Path) -> None:
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    from sender.audience.import_runs import start_run
    from sender.web.actors import bootstrap_actor

    saved = tmp_path / "upload-waiting.partial"
    saved.write_text(GOOD_CSV)
    with client.application.test_request_context():
        run_id = start_run(pg_engine, saved, "waiting.csv", bootstrap_actor("x"))
    fragment = client.get(f"/workspace/supporters/imports/{run_id}/progress").get_data(as_text=True)
    assert 'data-state="queued"' in fragment and "hx-get" in fragment
    assert client.get("/workspace/supporters/imports/999999").status_code == 404


def refused(
    engine: Engine,
    tmp_path: Path,
    body: bytes,
    name: str,
    status: int,
    says: str,
    **settings: object,
) -> None:
    client = signed_in(engine, Role.CAMPAIGNER, tmp_path, **settings)
    response = send(client, body, name)
    assert response.status_code == status
    assert says in response.get_data(as_text=True)
    assert runs(engine) == 0 and supporters(engine) == 0
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind
    assert changes(engine, "supporters.import") == []


def test_a_file_that_is_not_a_csv_is_refused(pg_engine: Engine, tmp_path: Path) -> None:
    refused(pg_engine, tmp_path, b"\x89PNG\r\n\x1a\n" + bytes(200), "photo.png", 400, "CSV")


def test_binary_data_named_csv_is_refused(pg_engine: Engine, tmp_path: Path) -> None:
    refused(pg_engine, tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00" * 50, "list.csv", 400, "not imported")


def test_an_empty_file_is_refused(pg_engine: Engine, tmp_path: Path) -> None:
    refused(pg_engine, tmp_path, b"", "empty.csv", 400, "the file is empty")


def test_a_file_without_an_email_column_is_refused(pg_engine: Engine, tmp_path: Path) -> None:
    refused(pg_engine, tmp_path, b"name,country\nAmira,EG\n", "crm.csv", 400, "no email column")


def test_a_file_over_the_limit_is_refused_with_the_limit(pg_engine: Engine, tmp_path: Path) -> None:
    body = GOOD_CSV.encode() * 40_000  # about 4.6 MB
    refused(
        pg_engine, tmp_path, body, "big.csv", 413, "limit of 2 MB", upload_max_bytes=2 * 1024**2
    )


def test_the_route_reads_more_than_the_apps_32_mb(pg_engine: Engine, tmp_path: Path) -> None:
    # 33 MB would be a 413 anywhere else in the app; here the header decides (no email column).
    body = b"name,country\n" + b"Amira,EG\n" * (33 * 1024**2 // 9)
    refused(pg_engine, tmp_path, body, "huge.csv", 400, "no email column")


def test_an_upload_without_the_csrf_token_is_refused(pg_engine: Engine, tmp_path: Path) -> None:
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path)
    response = send(client, GOOD_CSV.encode(), token="forged")
    assert response.status_code == 400 and "reload the page" in response.get_data(as_text=True)
    assert runs(pg_engine) == 0 and supporters(pg_engine) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_viewer_sees_no_upload_and_a_forged_one_is_refused(
    pg_engine: Engine, tmp_path: Path
) -> None:
    client = signed_in(pg_engine, Role.VIEWER, tmp_path)
    page = client.get(PAGE)
    assert page.status_code == 200 and 'type="file"' not in page.get_data(as_text=True)
    response = send(client, GOOD_CSV.encode())
    assert response.status_code == 403
    assert runs(pg_engine) == 0 and supporters(pg_engine) == 0
    assert list(tmp_path.iterdir()) == []
    (entry,) = changes(pg_engine, "supporters.import")
    assert (entry.actor, entry.outcome) == ("vera@example.org", "refused")


def test_signed_out_nobody_reaches_the_upload(pg_engine: Engine, tmp_path: Path) -> None:
    from web_fixtures import make_app

    client = make_app(pg_engine, upload_dir=tmp_path).test_client()
    response = client.post(UPLOAD, data={"file": (io.BytesIO(b"email\na@example.org\n"), "a.csv")})
    assert response.status_code in (302, 401, 403)
    assert runs(pg_engine) == 0 and list(tmp_path.iterdir()) == []


def zipped() -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("crm.csv", GOOD_CSV)
    return packed.getvalue()


def test_a_zip_is_refused_by_its_name(pg_engine: Engine, tmp_path: Path) -> None:
    refused(pg_engine, tmp_path, zipped(), "crm.zip", 400, "must be a CSV export")


def test_a_zip_named_csv_is_refused_by_its_bytes(pg_engine: Engine, tmp_path: Path) -> None:
    refused(pg_engine, tmp_path, zipped(), "crm.csv", 400, "not imported")


def test_a_streamed_body_past_the_limit_is_cut_off_with_the_limit(
    pg_engine: Engine, tmp_path: Path
) -> None:
    # No Content-Length (a chunked upload): the limit is found while the file is written.
    client = signed_in(pg_engine, Role.CAMPAIGNER, tmp_path, upload_max_bytes=2 * 1024**2)
    boundary = "bench-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{csrf_token(client, PAGE)}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + GOOD_CSV.encode() * 30_000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        UPLOAD,
        input_stream=io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        # As a server passes a chunked body on: no length, the stream ends by itself.
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    assert response.request.content_length is None
    assert response.status_code == 413
    assert "larger than the limit of 2 MB" in response.get_data(as_text=True)
    assert runs(pg_engine) == 0 and supporters(pg_engine) == 0
    assert list(tmp_path.iterdir()) == []
    assert changes(pg_engine, "supporters.import") == []
