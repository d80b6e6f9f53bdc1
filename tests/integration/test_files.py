"""The OpenAI Files API on the gateway: POST /v1/files (multipart/form-data upload), GET
/v1/files (list, paged and filtered), GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content.

Files live in the `state` store: memory (default), SQLite (survives a restart) and Redis (shared
by two instances). They belong to the caller's tenant when auth is on; without auth everyone
shares them. `state.files_max_bytes` bounds a file, `server.max_body_bytes` the request,
`state.files_ttl_s` (or the upload's `expires_after`) makes files expire.

Uploads are encoded by hand (`multipart()` below) so that malformed bodies can be sent too.

    cd /work/main && /usr/bin/python3 -m pytest tests/integration/test_files.py -q
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import (SLUICE_BIN, ConfigStarter, Gateway, RawHttp, assert_error_shape,
                      build_request, http_call, poll, render_config, require_binaries, sha)

FILES = "/v1/files"
BOUNDARY = "sluiceTestBoundary7MA4YWxkTrZu0gW"
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
FILE_KEYS = {"id", "object", "bytes", "created_at", "expires_at", "filename", "purpose",
             "status", "status_details"}
FILE_ID = re.compile(r"file_[0-9a-f]{48}")
UNKNOWN_ID = "file_" + "0123456789ab" * 4  # well formed, never issued

JSONL = (b'{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", '
         b'"body": {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}}\n')

# Bytes a text-minded parser would damage: NUL, CR, LF, CRLF, bytes that are not UTF-8, the
# text "--boundary" and this suite's own boundary (not after a CRLF, so not a delimiter).
BINARY = (bytes(range(256)) + b"\r\n\x00\x00\xff\xfe\xc3\x28\r\n\r\n--boundary--\r\n"
          + b"line with --" + BOUNDARY.encode() + b" inside\n\r\r\n\n--\r\n--x\r\n"
          + b"\x00" * 7 + b"\r")


# ---- gateways --------------------------------------------------------------------------------


class FilesStarter(ConfigStarter):
    """ConfigStarter that may also change the `server` map (e.g. max_body_bytes)."""

    def __call__(self, top: str = "", routes: str = "", name: str = "sluice",
                 server: dict | None = None) -> Gateway:
        require_binaries(SLUICE_BIN)
        text = top + render_config(self.mock.port, self.dead_port, server=server,
                                   extra_routes=self.base_routes + routes)
        path = self.tmp_path / f"{name}-{self.n}.yaml"
        self.n += 1
        path.write_text(text)
        return Gateway(self._launch(path, name), path, text)


@pytest.fixture
def start(mock, tmp_path):
    s = FilesStarter(mock, tmp_path)
    yield s
    s.stop_all()


@pytest.fixture
def gw(start) -> Gateway:
    return start()


# ---- multipart -------------------------------------------------------------------------------


def part(name: str | None, data: bytes | str, filename: str | None = None,
         ctype: str | None = None, headers: list[str] | None = None) -> bytes:
    """One part (its headers, a blank line, its data), without the delimiters. name None: no
    Content-Disposition header at all."""
    if isinstance(data, str):
        data = data.encode()
    lines = []
    if name is not None:
        cd = f'form-data; name="{name}"'
        if filename is not None:
            cd += f'; filename="{filename}"'
        lines.append(f"Content-Disposition: {cd}")
    if ctype is not None:
        lines.append(f"Content-Type: {ctype}")
    lines.extend(headers or [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + data


def multipart(parts: list[bytes], boundary: str = BOUNDARY, close: bool = True) -> bytes:
    b = boundary.encode()
    body = b"".join(b"--" + b + b"\r\n" + p + b"\r\n" for p in parts)
    if close:
        body += b"--" + b + b"--\r\n"
    return body


def ctype_for(boundary: str = BOUNDARY) -> str:
    return f"multipart/form-data; boundary={boundary}"


def file_parts(data: bytes, purpose: str | None = "batch", filename: str | None = "input.jsonl",
               ctype: str | None = "application/octet-stream", extra: list[bytes] = ()) -> list:
    parts = []
    if purpose is not None:
        parts.append(part("purpose", purpose))
    parts.append(part("file", data, filename, ctype))
    parts.extend(extra)
    return parts


def post_multipart(gw, parts: list[bytes], headers: dict | None = None,
                   boundary: str = BOUNDARY, content_type: str | None = None,
                   close: bool = True):
    h = {"Content-Type": content_type or ctype_for(boundary), **(headers or {})}
    return http_call(gw, "POST", FILES, body=multipart(parts, boundary, close), headers=h)


def upload(gw, data: bytes = JSONL, purpose: str = "batch", filename: str = "input.jsonl",
           headers: dict | None = None, extra: list[bytes] = ()):
    return post_multipart(gw, file_parts(data, purpose, filename, extra=extra), headers)


def check_file(obj: dict, data: bytes, filename: str, purpose: str,
               expires_in: int | None = None) -> dict:
    """An OpenAI file object for that upload (expires_in: expires_at - created_at, or None)."""
    assert set(obj) == FILE_KEYS, obj
    assert FILE_ID.fullmatch(obj["id"]), obj
    assert obj["object"] == "file", obj
    assert obj["bytes"] == len(data), (obj, len(data))
    assert isinstance(obj["created_at"], int) and abs(obj["created_at"] - time.time()) < 30, obj
    if expires_in is None:
        assert obj["expires_at"] is None, obj
    else:
        assert obj["expires_at"] == obj["created_at"] + expires_in, obj
    assert obj["filename"] == filename, obj
    assert obj["purpose"] == purpose, obj
    assert obj["status"] == "processed", obj
    assert obj["status_details"] is None, obj
    return obj


def upload_ok(gw, data: bytes = JSONL, purpose: str = "batch", filename: str = "input.jsonl",
              headers: dict | None = None, expires_in: int | None = None,
              extra: list[bytes] = ()) -> dict:
    r = upload(gw, data, purpose, filename, headers, extra)
    assert r.status == 200, r
    assert (r.header("content-type") or "").startswith("application/json"), r
    return check_file(r.json(), data, filename, purpose, expires_in)


def get(gw, path: str, headers: dict | None = None):
    return http_call(gw, "GET", path, headers=headers)


def delete(gw, path: str, headers: dict | None = None):
    return http_call(gw, "DELETE", path, headers=headers)


def content_of(gw, fid: str, headers: dict | None = None) -> bytes:
    r = get(gw, f"{FILES}/{fid}/content", headers)
    assert r.status == 200, r
    assert r.header("content-type") == "application/octet-stream", r
    assert r.header("content-length") in (None, str(len(r.body))), r
    return r.body


def listing(gw, query: str = "", headers: dict | None = None) -> dict:
    r = get(gw, FILES + (f"?{query}" if query else ""), headers)
    assert r.status == 200, r
    assert (r.header("content-type") or "").startswith("application/json"), r
    b = r.json()
    assert set(b) == {"object", "data", "first_id", "last_id", "has_more"}, b
    assert b["object"] == "list" and isinstance(b["has_more"], bool), b
    if b["data"]:
        assert b["first_id"] == b["data"][0]["id"] and b["last_id"] == b["data"][-1]["id"], b
    else:
        assert b["first_id"] is None and b["last_id"] is None, b
    return b


def ids(page: dict) -> list[str]:
    return [f["id"] for f in page["data"]]


def check_bad(r, status: int = 400, param: str | None = None) -> dict:
    err = assert_error_shape(r, status)
    assert err["type"] == "invalid_request_error", err
    if param is not None:
        assert err["param"] == param, err
    return err


def check_no_such_file(r, fid: str):
    err = assert_error_shape(r, 404)
    assert err["message"] == f"No such File object: {fid}", err


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


# =============================================================================================
# Upload, retrieve, content, delete
# =============================================================================================


def test_upload_retrieve_content_delete(gw):
    f = upload_ok(gw, JSONL, "batch", "input.jsonl")
    fid = f["id"]
    r = get(gw, f"{FILES}/{fid}")
    assert r.status == 200 and r.json() == f, r
    assert content_of(gw, fid) == JSONL
    assert listing(gw)["data"] == [f]

    r = delete(gw, f"{FILES}/{fid}")
    assert r.status == 200, r
    assert r.json() == {"id": fid, "object": "file", "deleted": True}, r
    check_no_such_file(get(gw, f"{FILES}/{fid}"), fid)
    check_no_such_file(get(gw, f"{FILES}/{fid}/content"), fid)
    assert listing(gw)["data"] == []
    check_no_such_file(delete(gw, f"{FILES}/{fid}"), fid)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_every_purpose_is_accepted(gw, purpose):
    f = upload_ok(gw, b"data for " + purpose.encode(), purpose, f"{purpose}.txt")
    assert get(gw, f"{FILES}/{f['id']}").json() == f


def test_binary_content_round_trips_byte_for_byte(gw):
    f = upload_ok(gw, BINARY, "user_data", "blob.bin")
    assert content_of(gw, f["id"]) == BINARY
    # One byte that is a CR, one that is "-".
    for one in (b"\r", b"-", b"\x00"):
        g = upload_ok(gw, one, "user_data", "one.bin")
        assert content_of(gw, g["id"]) == one


def test_a_large_file_round_trips(gw):
    data = hashlib.sha256(b"seed").digest() * (200 * 1024 // 32) + b"tail\r\n--"
    f = upload_ok(gw, data, "fine-tune", "big.jsonl")
    got = content_of(gw, f["id"])
    assert len(got) == len(data) and got == data


def test_each_upload_gets_its_own_id(gw):
    a = upload_ok(gw, JSONL)
    b = upload_ok(gw, JSONL)
    assert a["id"] != b["id"], (a, b)
    assert content_of(gw, a["id"]) == content_of(gw, b["id"]) == JSONL


def test_multipart_spellings_that_are_valid(gw):
    data = b"spelled differently\n"
    # The file part first, no Content-Type on it.
    r = post_multipart(gw, [part("file", data, "a.txt"), part("purpose", "assistants")])
    assert r.status == 200, r
    check_file(r.json(), data, "a.txt", "assistants")
    # A quoted boundary parameter (RFC 2046 allows it; the boundary here needs no quotes).
    r = post_multipart(gw, file_parts(data, "vision", "b.png", "image/png"),
                       content_type=f'multipart/form-data; boundary="{BOUNDARY}"')
    assert r.status == 200, r
    check_file(r.json(), data, "b.png", "vision")
    # A filename with spaces and UTF-8 letters.
    r = post_multipart(gw, file_parts(data, "user_data", "my data é.txt", "text/plain"))
    assert r.status == 200, r
    check_file(r.json(), data, "my data é.txt", "user_data")
    assert content_of(gw, r.json()["id"]) == data
    # filename before name, and a lower-case header name (header names are case-insensitive).
    r = post_multipart(gw, [part("purpose", "evals"),
                            part(None, data, headers=[
                                'content-disposition: form-data; filename="c.txt"; name="file"',
                                "content-type: text/plain"])])
    assert r.status == 200, r
    check_file(r.json(), data, "c.txt", "evals")
    assert content_of(gw, r.json()["id"]) == data


def test_a_chunked_upload_is_accepted(gw):
    body = multipart(file_parts(BINARY, "batch", "chunked.bin"))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100])
                      for i in range(0, len(body), 100)) + b"0\r\n\r\n"
    with RawHttp(gw.host, gw.port) as c:
        c.send(build_request("POST", FILES, chunks, {"Content-Type": ctype_for(),
                                                     "Transfer-Encoding": "chunked"}))
        r = c.read_response()
    assert r.status == 200, r
    f = check_file(r.json(), BINARY, "chunked.bin", "batch")
    assert content_of(gw, f["id"]) == BINARY


def test_concurrent_uploads_are_all_kept(gw):
    n = 24
    results: list = [None] * n

    def one(i: int):
        results[i] = upload(gw, f"concurrent {i}\n".encode() * (i + 1), "batch", f"c{i}.txt")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    made = {}
    for i, r in enumerate(results):
        assert r is not None and r.status == 200, (i, r)
        made[r.json()["id"]] = i
    assert len(made) == n
    assert set(ids(listing(gw, "limit=100"))) == set(made)
    for fid, i in made.items():
        assert content_of(gw, fid) == f"concurrent {i}\n".encode() * (i + 1)


def test_unknown_ids_are_404(gw):
    upload_ok(gw)  # the store is not empty
    check_no_such_file(get(gw, f"{FILES}/{UNKNOWN_ID}"), UNKNOWN_ID)
    check_no_such_file(get(gw, f"{FILES}/{UNKNOWN_ID}/content"), UNKNOWN_ID)
    check_no_such_file(delete(gw, f"{FILES}/{UNKNOWN_ID}"), UNKNOWN_ID)
    for fid in ("file-abc123", "not-an-id", "resp_123"):
        assert_error_shape(get(gw, f"{FILES}/{fid}"), 404)
        assert_error_shape(get(gw, f"{FILES}/{fid}/content"), 404)
        assert_error_shape(delete(gw, f"{FILES}/{fid}"), 404)


# =============================================================================================
# Refused uploads
# =============================================================================================


def test_unknown_or_missing_purpose_is_400(gw):
    for purpose in ("nonsense", "batch_output", "Batch", ""):
        err = check_bad(upload(gw, purpose=purpose), 400, "purpose")
        assert err["message"], err
    check_bad(post_multipart(gw, file_parts(JSONL, purpose=None)), 400, "purpose")
    assert listing(gw)["data"] == []


def test_missing_file_part_or_filename_or_empty_file_is_400(gw):
    check_bad(post_multipart(gw, [part("purpose", "batch")]), 400, "file")
    # A `file` part that is a plain field (no filename).
    check_bad(post_multipart(gw, [part("purpose", "batch"), part("file", JSONL)]), 400, "file")
    check_bad(upload(gw, b""), 400, "file")
    assert listing(gw)["data"] == []


@pytest.mark.parametrize("ctype", ["application/json", "text/plain",
                                   "application/x-www-form-urlencoded", None,
                                   "multipart/form-data", "multipart/mixed; boundary=" + BOUNDARY])
def test_content_types_other_than_multipart_form_data_are_400(gw, ctype):
    body = (b'{"purpose": "batch", "file": "x"}' if ctype == "application/json"
            else multipart(file_parts(JSONL)))
    headers = [("Content-Length", str(len(body)))]
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    with RawHttp(gw.host, gw.port) as c:
        # build_request adds a JSON Content-Type unless one is given: write the head by hand.
        head = f"POST {FILES} HTTP/1.1\r\nHost: sluice.test\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        c.send(head.encode() + body)
        r = c.read_response()
    check_bad(r, 400)
    assert listing(gw)["data"] == []


def test_malformed_multipart_is_400_and_the_gateway_lives_on(gw):
    cases = {
        "no closing boundary": multipart(file_parts(JSONL), close=False),
        "no delimiter at all": b"just some bytes\r\n",
        "empty body": b"",
        "part without Content-Disposition": multipart(
            [part("purpose", "batch"), part(None, JSONL, ctype="text/plain")]),
        "another boundary": multipart(file_parts(JSONL), boundary="somethingElse"),
        "part without a blank line after its headers": (
            b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"purpose\""
            b"\r\n--" + BOUNDARY.encode() + b"--\r\n"),
        "truncated in the file's data": multipart(file_parts(JSONL))[:-len(BOUNDARY) - 30],
    }
    for what, body in cases.items():
        r = http_call(gw, "POST", FILES, body=body, headers={"Content-Type": ctype_for()})
        err = check_bad(r, 400)
        assert err["message"] and "internal" not in err["message"].lower(), (what, err)
    assert gw.proc.alive(), gw.proc.stderr_text()
    assert listing(gw)["data"] == []
    upload_ok(gw)  # still serving


def test_more_than_16_parts_is_400(gw):
    extra = [part(f"extra_{i}", "x") for i in range(15)]  # 2 + 15 = 17 parts
    check_bad(upload(gw, extra=extra), 400)
    assert listing(gw)["data"] == []


def test_16_parts_are_accepted(gw):
    extra = [part(f"extra_{i}", "x") for i in range(14)]  # 2 + 14 = 16 parts
    upload_ok(gw, extra=extra)


def expires(anchor: str = "created_at", seconds: str = "3600") -> list[bytes]:
    return [part("expires_after[anchor]", anchor), part("expires_after[seconds]", seconds)]


def test_expires_after_sets_expires_at(gw):
    f = upload_ok(gw, extra=expires(seconds="3600"), expires_in=3600)
    assert get(gw, f"{FILES}/{f['id']}").json() == f
    upload_ok(gw, extra=expires(seconds="2592000"), expires_in=2592000)


@pytest.mark.parametrize("anchor,seconds,field", [
    ("last_active_at", "3600", "anchor"),
    ("", "3600", "anchor"),
    ("created_at", "10", "seconds"),
    ("created_at", "3599", "seconds"),
    ("created_at", "2592001", "seconds"),
    ("created_at", "abc", "seconds"),
    ("created_at", "-3600", "seconds"),
    ("created_at", "3600.5", "seconds"),
])
def test_bad_expires_after_is_400_naming_the_field(gw, anchor, seconds, field):
    err = check_bad(upload(gw, extra=expires(anchor, seconds)), 400)
    assert isinstance(err["param"], str) and "expires_after" in err["param"] \
        and field in err["param"], err
    assert listing(gw)["data"] == []


# =============================================================================================
# Sizes
# =============================================================================================


def test_files_max_bytes_is_413(start):
    gw = start("state: {files_max_bytes: 1KiB}\n")
    upload_ok(gw, b"a" * 1024, filename="exactly.txt")
    for n in (1025, 2048):
        r = upload(gw, b"b" * n, filename="too-big.txt")
        assert_error_shape(r, 413)
    assert [f["filename"] for f in listing(gw)["data"]] == ["exactly.txt"]


def test_max_body_bytes_bounds_the_upload_request(start):
    gw = start(server={"max_body_bytes": "64KiB"})
    upload_ok(gw, b"s" * 32 * 1024)
    r = upload(gw, b"x" * 100 * 1024)
    assert_error_shape(r, 413)
    assert len(listing(gw)["data"]) == 1


# =============================================================================================
# List
# =============================================================================================


def test_list_pages_in_both_orders(gw):
    files = [upload_ok(gw, f"file {i}\n".encode(), "batch", f"f{i:02}.jsonl") for i in range(25)]
    up = [f["id"] for f in files]  # upload order
    newest = up[::-1]

    default = listing(gw)
    assert ids(default) == newest[:20] and default["has_more"] is True, default
    assert default["data"] == files[::-1][:20]

    # desc (the default order), 10 at a time
    seen, after = [], None
    for want_more in (True, True, False):
        q = "limit=10" + (f"&after={after}" if after else "")
        p = listing(gw, q)
        assert p["has_more"] is want_more, (q, p)
        seen += ids(p)
        after = p["last_id"]
    assert seen == newest
    p = listing(gw, f"order=desc&limit=10&after={newest[9]}")
    assert ids(p) == newest[10:20] and p["has_more"] is True, p

    # asc, 10 at a time
    seen, after = [], None
    for want_more in (True, True, False):
        q = "order=asc&limit=10" + (f"&after={after}" if after else "")
        p = listing(gw, q)
        assert p["has_more"] is want_more, (q, p)
        seen += ids(p)
        after = p["last_id"]
    assert seen == up

    # exact fits and the limits
    p = listing(gw, "order=asc&limit=25")
    assert ids(p) == up and p["has_more"] is False, p
    p = listing(gw, "limit=100")
    assert ids(p) == newest and p["has_more"] is False, p
    p = listing(gw, "limit=1")
    assert ids(p) == newest[:1] and p["has_more"] is True, p
    p = listing(gw, f"order=asc&limit=5&after={up[19]}")
    assert ids(p) == up[20:] and p["has_more"] is False, p
    p = listing(gw, f"order=asc&after={up[24]}")
    assert p["data"] == [] and p["has_more"] is False, p


def test_list_filters_by_purpose(gw):
    made = []
    for i in range(9):
        purpose = ("batch", "assistants", "user_data")[i % 3]
        made.append(upload_ok(gw, f"{purpose} {i}\n".encode(), purpose, f"p{i}.txt"))
    batch = [f["id"] for f in made if f["purpose"] == "batch"]  # upload order
    p = listing(gw, "purpose=batch")
    assert ids(p) == batch[::-1] and p["has_more"] is False, p
    assert all(f["purpose"] == "batch" for f in p["data"]), p
    p = listing(gw, "purpose=assistants&order=asc")
    assert ids(p) == [f["id"] for f in made if f["purpose"] == "assistants"], p
    assert listing(gw, "purpose=vision")["data"] == []
    # Paging inside a filter: only batch files, and has_more counts only batch files.
    p1 = listing(gw, "purpose=batch&limit=2")
    assert ids(p1) == batch[::-1][:2] and p1["has_more"] is True, p1
    p2 = listing(gw, f"purpose=batch&limit=2&after={p1['last_id']}")
    assert ids(p2) == batch[::-1][2:] and p2["has_more"] is False, p2
    p = listing(gw, "purpose=batch&order=asc&limit=3")
    assert ids(p) == batch and p["has_more"] is False, p


@pytest.mark.parametrize("query,param", [("limit=0", "limit"), ("limit=101", "limit"),
                                         ("limit=abc", "limit"), ("limit=-1", "limit"),
                                         ("order=sideways", "order")])
def test_list_refuses_bad_paging_parameters(gw, query, param):
    upload_ok(gw)
    check_bad(get(gw, f"{FILES}?{query}"), 400, param)


def test_deleted_files_leave_the_list(gw):
    files = [upload_ok(gw, f"{i}".encode(), filename=f"{i}.txt") for i in range(3)]
    assert delete(gw, f"{FILES}/{files[1]['id']}").status == 200
    assert ids(listing(gw)) == [files[2]["id"], files[0]["id"]]
    assert ids(listing(gw, "order=asc")) == [files[0]["id"], files[2]["id"]]


# =============================================================================================
# Methods and paths
# =============================================================================================


def test_wrong_methods_are_405_with_allow(gw):
    fid = upload_ok(gw)["id"]
    for method, path, allow in (("PUT", FILES, "GET, POST"),
                                ("DELETE", FILES, "GET, POST"),
                                ("PATCH", FILES, "GET, POST"),
                                ("POST", f"{FILES}/{fid}", "GET, DELETE"),
                                ("PUT", f"{FILES}/{fid}", "GET, DELETE"),
                                ("POST", f"{FILES}/{fid}/content", "GET"),
                                ("DELETE", f"{FILES}/{fid}/content", "GET")):
        body = b"{}" if method in ("PUT", "POST", "PATCH") else None
        r = http_call(gw, method, path, body=body)
        assert_error_shape(r, 405)
        assert r.header("allow") == allow, (method, path, r)
    # Nothing of that changed the file.
    assert content_of(gw, fid) == JSONL


def test_unknown_sub_paths_are_404(gw):
    fid = upload_ok(gw)["id"]
    for path in (f"{FILES}/{fid}/other", f"{FILES}/{fid}/content/more",
                 f"{FILES}/{UNKNOWN_ID}/other"):
        assert_error_shape(get(gw, path), 404)
    assert content_of(gw, fid) == JSONL


# =============================================================================================
# Owners
# =============================================================================================

KEY_A1, KEY_A2, KEY_B = "sk-files-alpha-one", "sk-files-alpha-two", "sk-files-beta-one"
AUTH = f"""\
auth:
  enabled: true
  keys:
    - {{name: alpha-one, key_sha256: "{sha(KEY_A1)}", tenant: alpha}}
    - {{name: alpha-two, key_sha256: "{sha(KEY_A2)}", tenant: alpha}}
    - {{name: beta-one, key_sha256: "{sha(KEY_B)}", tenant: beta}}
"""


def test_files_belong_to_their_tenant(start):
    gw = start(AUTH)
    a1, a2, b = bearer(KEY_A1), bearer(KEY_A2), bearer(KEY_B)
    assert_error_shape(upload(gw), 401)
    assert_error_shape(get(gw, FILES), 401)
    assert_error_shape(upload(gw, headers=bearer("sk-not-a-key")), 401)

    f = upload_ok(gw, BINARY, "batch", "alpha.bin", headers=a1)
    fid = f["id"]
    path = f"{FILES}/{fid}"
    assert_error_shape(get(gw, path), 401)
    # The same tenant (another key of it) sees it.
    r = get(gw, path, a2)
    assert r.status == 200 and r.json() == f, r
    assert content_of(gw, fid, a2) == BINARY
    assert listing(gw, headers=a2)["data"] == [f]
    # Another tenant does not, and cannot delete it.
    check_no_such_file(get(gw, path, b), fid)
    check_no_such_file(get(gw, f"{path}/content", b), fid)
    check_no_such_file(delete(gw, path, b), fid)
    assert listing(gw, headers=b)["data"] == []
    assert listing(gw, "purpose=batch", headers=b)["data"] == []
    # Beta's own file is beta's alone.
    g = upload_ok(gw, b"beta data", "batch", "beta.txt", headers=b)
    assert listing(gw, headers=b)["data"] == [g]
    assert listing(gw, headers=a1)["data"] == [f]
    check_no_such_file(get(gw, f"{FILES}/{g['id']}", a1), g["id"])
    # Nothing beta tried changed alpha's file.
    assert get(gw, path, a1).json() == f
    assert content_of(gw, fid, a1) == BINARY
    # Alpha's other key may delete it.
    r = delete(gw, path, a2)
    assert r.status == 200 and r.json() == {"id": fid, "object": "file", "deleted": True}, r
    check_no_such_file(get(gw, path, a1), fid)
    assert get(gw, f"{FILES}/{g['id']}", b).status == 200


def test_a_key_without_a_tenant_is_its_own_owner(start):
    solo, solo2 = "sk-files-solo", "sk-files-solo-two"
    gw = start(AUTH + f"""\
    - {{name: solo, key_sha256: "{sha(solo)}"}}
    - {{name: solo-two, key_sha256: "{sha(solo2)}"}}
""")
    f = upload_ok(gw, b"solo's", headers=bearer(solo))
    g = upload_ok(gw, b"alpha's", headers=bearer(KEY_A1))
    assert listing(gw, headers=bearer(solo))["data"] == [f]
    for other in (solo2, KEY_A1, KEY_B):
        check_no_such_file(get(gw, f"{FILES}/{f['id']}", bearer(other)), f["id"])
        assert f["id"] not in ids(listing(gw, headers=bearer(other)))
    check_no_such_file(get(gw, f"{FILES}/{g['id']}", bearer(solo)), g["id"])
    assert listing(gw, headers=bearer(solo2))["data"] == []


def test_without_auth_everyone_shares(gw):
    f = upload_ok(gw)
    other = bearer("sk-anyone-at-all")
    r = get(gw, f"{FILES}/{f['id']}", other)
    assert r.status == 200 and r.json() == f, r
    assert content_of(gw, f["id"], other) == JSONL
    assert listing(gw, headers=other)["data"] == [f]
    g = upload_ok(gw, b"second", headers=other)
    assert ids(listing(gw)) == [g["id"], f["id"]]


# =============================================================================================
# Backends
# =============================================================================================


def test_sqlite_files_survive_a_restart(start):
    gw = start("state: {backend: sqlite, path: files.db}\n")
    f = upload_ok(gw, BINARY, "assistants", "kept.bin")
    g = upload_ok(gw, JSONL, "batch", "gone.jsonl")
    h = upload_ok(gw, b"expiring", "batch", "e.txt", extra=expires(seconds="3600"),
                  expires_in=3600)
    gw.proc.stop()
    assert (gw.config_path.parent / "files.db").exists()
    gw2 = start.restart(gw)
    assert get(gw2, f"{FILES}/{f['id']}").json() == f
    assert content_of(gw2, f["id"]) == BINARY
    assert get(gw2, f"{FILES}/{h['id']}").json() == h
    assert listing(gw2)["data"] == [h, g, f]
    # Deletions persist too.
    assert delete(gw2, f"{FILES}/{g['id']}").status == 200
    gw2.proc.stop()
    gw3 = start.restart(gw)
    check_no_such_file(get(gw3, f"{FILES}/{g['id']}"), g["id"])
    assert listing(gw3)["data"] == [h, f]
    assert content_of(gw3, f["id"]) == BINARY


def test_redis_files_are_shared_by_two_instances(start, redis):
    top = f'redis: {{url: "redis://127.0.0.1:{redis.port}"}}\nstate: {{backend: redis}}\n'
    a = start(top, name="gw-a")
    b = start(top, name="gw-b")
    f = upload_ok(a, BINARY, "batch", "shared.bin")
    r = get(b, f"{FILES}/{f['id']}")
    assert r.status == 200 and r.json() == f, r
    assert content_of(b, f["id"]) == BINARY
    assert listing(b)["data"] == [f]
    g = upload_ok(b, JSONL, "fine-tune", "from-b.jsonl")
    assert ids(listing(a)) == [g["id"], f["id"]]
    assert delete(b, f"{FILES}/{f['id']}").status == 200
    check_no_such_file(get(a, f"{FILES}/{f['id']}"), f["id"])
    assert ids(listing(a)) == [g["id"]]
    keys = redis.command("KEYS", "*")
    assert keys and all(k.startswith("sluice:") for k in keys), keys


# =============================================================================================
# Expiry
# =============================================================================================


def test_files_ttl_makes_files_expire(start):
    gw = start("state: {files_ttl_s: 1}\n")
    f = upload_ok(gw, expires_in=1)
    fid = f["id"]
    assert get(gw, f"{FILES}/{fid}").status == 200
    gone = poll(lambda: get(gw, f"{FILES}/{fid}").status == 404, 4.0, 0.1)
    assert gone, get(gw, f"{FILES}/{fid}")
    check_no_such_file(get(gw, f"{FILES}/{fid}"), fid)
    check_no_such_file(get(gw, f"{FILES}/{fid}/content"), fid)
    assert listing(gw)["data"] == []


def readable(gw, fid: str) -> bool:
    return get(gw, f"{FILES}/{fid}").status == 200


def ttl_gateway(start, backend: str, request) -> Gateway:
    """A gateway whose files expire after 1 s unless the upload asks otherwise."""
    if backend == "redis":
        r = request.getfixturevalue("redis")
        return start(f'redis: {{url: "redis://127.0.0.1:{r.port}"}}\n'
                     "state: {backend: redis, files_ttl_s: 1}\n")
    if backend == "sqlite":
        return start("state: {backend: sqlite, path: files.db, files_ttl_s: 1}\n")
    return start("state: {backend: memory, files_ttl_s: 1}\n")


# Files with different lifetimes (state.files_ttl_s and an upload's expires_after): the list
# shows exactly the files that can still be read. (Found by these tests: the list once took the
# expiry of its newest upload.)


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_an_expired_file_leaves_the_list_when_a_longer_lived_file_follows(start, backend,
                                                                          request):
    # The list shows exactly the files that can still be read.
    gw = ttl_gateway(start, backend, request)
    short = upload_ok(gw, b"short", filename="short.txt", expires_in=1)
    long = upload_ok(gw, b"long", filename="long.txt", extra=expires(seconds="3600"),
                     expires_in=3600)
    assert poll(lambda: not readable(gw, short["id"]), 4.0, 0.1)
    check_no_such_file(get(gw, f"{FILES}/{short['id']}"), short["id"])
    assert readable(gw, long["id"])
    assert ids(listing(gw)) == [long["id"]]  # got [long, short]: short is listed, unreadable


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_a_shorter_lived_upload_does_not_drop_older_files_from_the_list(start, backend,
                                                                        request):
    gw = ttl_gateway(start, backend, request)
    long = upload_ok(gw, b"long", filename="long.txt", extra=expires(seconds="3600"),
                     expires_in=3600)
    short = upload_ok(gw, b"short", filename="short.txt", expires_in=1)
    assert listing(gw)["data"] == [short, long]
    assert poll(lambda: not readable(gw, short["id"]), 4.0, 0.1)
    assert readable(gw, long["id"]) and content_of(gw, long["id"]) == b"long"
    assert ids(listing(gw)) == [long["id"]]  # got []: the whole list expired with `short`


# =============================================================================================
# Metrics
# =============================================================================================

from test_cache import metric  # noqa: E402  (sums a family's samples by labels)


def test_metrics_count_file_writes_and_requests(gw):
    assert metric(gw, "sluice_state_writes_total", what="file", result="ok") == 0
    fs = [upload_ok(gw, f"{i}".encode()) for i in range(3)]
    check_bad(upload(gw, purpose="nonsense"), 400)
    assert metric(gw, "sluice_state_writes_total", what="file", result="ok") == 3
    assert metric(gw, "sluice_state_writes_total", what="file", result="error") == 0
    listing(gw)
    get(gw, f"{FILES}/{fs[0]['id']}")
    content_of(gw, fs[0]["id"])
    check_no_such_file(get(gw, f"{FILES}/{UNKNOWN_ID}"), UNKNOWN_ID)
    # 3 uploads + list + get + content are 2xx; the bad upload and the unknown id are 4xx.
    assert poll(lambda: metric(gw, "sluice_requests_total", route="/v1/files") == 8, 5), \
        metric(gw, "sluice_requests_total", route="/v1/files")
    assert metric(gw, "sluice_requests_total", route="/v1/files", status="2xx") == 6
    assert metric(gw, "sluice_requests_total", route="/v1/files", status="4xx",
                  outcome="client_error") == 2


# =============================================================================================
# Configuration
# =============================================================================================


def check_config(tmp_path, state: str) -> subprocess.CompletedProcess:
    require_binaries(SLUICE_BIN)
    cfg = tmp_path / "files.yaml"
    cfg.write_text("routes: [{model: m, targets: [{provider: demo}]}]\n" + state)
    return subprocess.run([str(SLUICE_BIN), "--check-config", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize("state,where", [
    ("state: {files_max_bytes: 0}\n", "state.files_max_bytes"),
    ("state: {files_ttl_s: -1}\n", "state.files_ttl_s"),
    ("state: {files_max_bytes: lots}\n", "state.files_max_bytes"),
])
def test_bad_files_config_is_rejected(tmp_path, state, where):
    r = check_config(tmp_path, state)
    assert r.returncode == 2 and where in r.stderr, r


def test_files_config_keys_are_known(tmp_path):
    # The refusals above are not merely "unknown key": the keys exist.
    r = check_config(tmp_path, "state: {files_max_bytes: 1KiB, files_ttl_s: 0}\n")
    assert r.returncode == 0, r
    r = check_config(tmp_path, "state: {files_max_bytes: 512MiB, files_ttl_s: 86400}\n")
    assert r.returncode == 0, r
