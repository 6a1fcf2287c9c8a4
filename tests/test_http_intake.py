"""HTTP intake: a real server on a free port, real requests, the real store and quarantine."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from skillforge.cli import main
from skillforge.config import load
from skillforge.daemon import Daemon
from skillforge.errors import ConfigError
from skillforge.http_intake import ROUTES, IntakeServer
from skillforge.intake import quarantine_file_sink
from skillforge.openapi import openapi_document
from skillforge.store import Store
from tests.conftest import REPO_ROOT

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def run_record(n: int, **extra: Any) -> dict[str, Any]:
    steps = [{"type": "tool_call", "name": "lookup", "arguments": {"n": n}, "result": "ok"}]
    return {"id": f"run-{n}", "task": f"task {n}", "steps": steps, "outcome": {"success": True}}


class Intake:
    """An IntakeServer on a free loopback port, and a way to talk to it."""

    def __init__(self, tmp_path, *, server: dict[str, Any] | None = None, **settings: Any) -> None:
        """`settings` go to the configuration, `server` to IntakeServer itself."""
        overrides = {"http": "127.0.0.1:0", "http_token": TOKEN, **settings}
        self.config = load(environ={}, cwd=tmp_path, overrides=overrides)
        self.stored_hooks = 0
        self.said: list[str] = []
        self.server = IntakeServer(
            self.config,
            on_stored=self._stored,
            on_quarantine=quarantine_file_sink(self.config.quarantine_file),
            say=self.said.append,
            **(server or {}),
        ).start()
        self.url = self.server.url

    def _stored(self, store: Store) -> None:
        self.stored_hooks += 1

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], Any]:
        request = urllib.request.Request(
            self.url + path, data=body, headers=headers or {}, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read()), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), exc.headers

    def post(self, records: Any, *, kind: str = "application/json", token: str | None = TOKEN):
        body = records if isinstance(records, bytes) else json.dumps(records).encode()
        headers = {"Content-Type": kind}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.request("POST", "/v1/trajectories", body, headers)

    def store(self) -> Store:
        return Store(self.config.db_path)


@pytest.fixture
def intake(tmp_path):
    running = Intake(tmp_path)
    yield running
    running.server.stop()


def test_one_record_is_stored_before_the_202(intake):
    status, body, _ = intake.post(run_record(1))
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0, "ids": ["run-1"]})
    with intake.store() as store:
        assert store.trajectory_ids() == ["run-1"]
        [row] = store.db.query("SELECT source FROM trajectories")
    assert row["source"] == "http:127.0.0.1"
    assert intake.stored_hooks == 1
    assert intake.said == ["http: stored 1 trajectories from 127.0.0.1 (0 duplicates)"]


def test_a_resent_batch_is_stored_once(intake):
    batch = [run_record(1), run_record(2)]
    assert intake.post(batch)[1] == {"accepted": 2, "duplicates": 0, "ids": ["run-1", "run-2"]}
    assert intake.post(batch)[1] == {"accepted": 0, "duplicates": 2, "ids": ["run-1", "run-2"]}
    with intake.store() as store:
        assert store.count("trajectories") == 2 and store.counter("duplicates") == 2
    assert intake.stored_hooks == 1  # nothing new, no reason to think about a cycle


def test_a_jsonl_batch_in_any_known_shape(intake, airline_records):
    lines = [json.dumps(run_record(1)), "", json.dumps(airline_records[0])]
    body = ("\r\n".join(lines) + "\n").encode()
    status, answer, _ = intake.post(body, kind="application/x-ndjson")
    assert status == 202 and answer["accepted"] == 2 and answer["ids"][0] == "run-1"
    with intake.store() as store:
        tasks = [t.task for t in store.trajectories()]
    assert tasks[1] == airline_records[0]["info"]["task"]["instruction"]


def test_invalid_records_refuse_the_request_and_go_to_the_quarantine(intake):
    batch = [run_record(1), {"task": "x", "steps": [{"type": "tool_call"}]}, 42]
    status, answer, _ = intake.post(batch)
    assert status == 400
    assert [e["index"] for e in answer["errors"]] == [1, 2]
    assert "steps.0" in answer["errors"][0]["reason"] and "name" in answer["errors"][0]["reason"]
    assert "a JSON number is not a trajectory" in answer["errors"][1]["reason"]
    with intake.store() as store:
        assert store.count("trajectories") == 0  # all or nothing
        rows = sorted(store.quarantine(), key=lambda r: r["line"])
    assert [r["line"] for r in rows] == [2, 3]
    assert {r["file"] for r in rows} == {f"http:127.0.0.1 request {answer['request']}"}
    assert rows[1]["excerpt"] == "42"
    lines = intake.config.quarantine_file.read_text().splitlines()
    assert [json.loads(line)["reason"] for line in lines] == [r["reason"] for r in rows]


def test_a_body_that_is_not_json_is_refused_and_kept(intake):
    status, answer, _ = intake.post(b'{"task": "cut off', kind="application/json; charset=utf-8")
    assert status == 400 and "not valid JSON" in answer["errors"][0]["reason"]
    status, answer, _ = intake.post(b"\xff\xfe", kind="application/x-ndjson")
    assert status == 400 and "not valid UTF-8" in answer["errors"][0]["reason"]
    status, answer, _ = intake.post(b"[]")
    assert status == 400 and answer["errors"][0]["reason"] == "the body holds no trajectories"
    with intake.store() as store:
        excerpts = sorted(r["excerpt"] for r in store.quarantine())
    assert excerpts == ["\\xff\\xfe", '{"task": "cut off']


def test_the_token_is_required(intake):
    assert intake.post(run_record(1), token=None)[0] == 401
    status, answer, headers = intake.post(run_record(1), token="wrong")
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert intake.request("GET", "/v1/status")[0] == 401
    assert intake.request("GET", "/v1/status", headers={"Authorization": TOKEN})[0] == 401
    with intake.store() as store:
        assert store.count("trajectories") == 0 and store.count("quarantine") == 0


def raw_post(url: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict]:
    """A request http.client sends exactly as given (no Content-Length unless set)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v1/trajectories", skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    if body:
        conn.send(body)
    response = conn.getresponse()
    answer = response.status, json.loads(response.read())
    conn.close()
    return answer


def test_size_limit_and_content_length(tmp_path):
    intake = Intake(tmp_path, http_max_bytes=4096)
    try:
        big = json.dumps({"task": "x" * 5000}).encode()
        status, answer = raw_post(intake.url, {**AUTH, "Content-Length": str(len(big))}, big)
        assert status == 413 and "over the limit of 4096" in answer["errors"][0]["reason"]
        status, answer = raw_post(intake.url, AUTH)
        assert status == 411
        status, answer = raw_post(intake.url, {**AUTH, "Transfer-Encoding": "chunked"})
        assert status == 411
        status, answer = raw_post(intake.url, {**AUTH, "Content-Length": "many"})
        assert status == 400
        assert intake.post(run_record(1))[0] == 202  # just under the limit is fine
    finally:
        intake.server.stop()
    with intake.store() as store:
        assert store.trajectory_ids() == ["run-1"] and store.count("quarantine") == 0


def test_unknown_paths_methods_and_types(intake):
    assert intake.request("GET", "/v2/anything", headers=AUTH)[0] == 404
    status, _, headers = intake.request("GET", "/v1/trajectories", headers=AUTH)
    assert status == 405 and headers["Allow"] == "POST"
    assert intake.request("DELETE", "/v1/status", headers=AUTH)[0] == 405
    status, answer, _ = intake.post(b"task,steps", kind="text/csv")
    assert status == 415 and "application/x-ndjson" in answer["errors"][0]["reason"]


def test_status_counts_what_arrived(intake):
    intake.post([run_record(1), {**run_record(2), "outcome": {"success": False}}])
    intake.post([{"no": "shape"}])
    status, answer, _ = intake.request("GET", "/v1/status", headers=AUTH)
    assert status == 200
    assert answer == {
        "trajectories": 2,
        "succeeded": 1,
        "failed": 1,
        "duplicates": 0,
        "quarantined": 1,
        "not_evolved": 2,
        "last_cycle": None,
        "next_cycle": None,
    }


def test_concurrent_posts_store_every_run_once(intake):
    def post(start: int) -> None:
        for n in range(start, start + 10):
            assert intake.post([run_record(n), run_record(n + 1)])[0] == 202

    threads = [threading.Thread(target=post, args=(i * 5,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with intake.store() as store:
        ids = store.trajectory_ids()
    assert len(ids) == len(set(ids)) == 36  # run-0 .. run-35, overlapping batches


# -- the OpenAPI document ------------------------------------------------------------------


def resolve(document: dict, ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_the_openapi_document_is_served_without_a_token_and_well_formed(intake):
    status, document, _ = intake.request("GET", "/v1/openapi.json")
    assert status == 200 and document == json.loads(json.dumps(openapi_document()))
    assert document["openapi"].startswith("3.1.")
    assert {"title", "version"} <= set(document["info"])
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(document)):
        assert resolve(document, ref) is not None, ref
    for methods in document["paths"].values():
        for method, operation in methods.items():
            assert method in {"get", "post", "put", "delete", "patch"}
            assert operation["operationId"] and operation["responses"]
            for code, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", code) and response["description"]
    trajectory = document["components"]["schemas"]["Trajectory"]
    assert {"task", "steps", "outcome", "skills"} <= set(trajectory["properties"])


def test_every_route_is_documented_with_the_codes_it_answers(intake):
    paths = openapi_document()["paths"]
    documented = {(p, m.upper()) for p, methods in paths.items() for m in methods}
    assert documented == {(p, m) for p, methods in ROUTES.items() for m in methods}

    def answers(path: str, method: str) -> set[str]:
        return set(paths[path][method.lower()]["responses"])

    post = "/v1/trajectories", "POST"
    assert str(intake.post(run_record(1))[0]) in answers(*post)
    assert str(intake.post([1])[0]) in answers(*post)
    assert str(intake.post(run_record(1), token=None)[0]) in answers(*post)
    assert str(intake.post(b"x", kind="text/csv")[0]) in answers(*post)
    assert str(raw_post(intake.url, AUTH)[0]) in answers(*post)
    assert str(intake.request("GET", "/v1/status", headers=AUTH)[0]) in answers("/v1/status", "GET")
    assert str(intake.request("GET", "/v1/status")[0]) in answers("/v1/status", "GET")
    assert str(intake.request("GET", "/v1/openapi.json")[0]) in answers("/v1/openapi.json", "GET")


# -- configuration, the CLI and the daemon -------------------------------------------------


def test_no_token_off_loopback_is_refused(tmp_path):
    config = load(environ={}, cwd=tmp_path, overrides={"http": "0.0.0.0:0"})
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0:0 without a token"):
        IntakeServer(config)
    with_token = config.model_copy(update={"http_token": TOKEN})
    IntakeServer(with_token).stop()  # binds, so it can start
    for bad in ("8765", "localhost:http", "host:70000"):
        with pytest.raises(ConfigError, match="is not HOST:PORT"):
            IntakeServer(config.model_copy(update={"http": bad}))


def test_a_busy_port_is_a_clear_error(intake):
    busy = intake.config.model_copy(update={"http": intake.url.removeprefix("http://")})
    with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1:"):
        IntakeServer(busy)


def test_settings_come_from_the_environment(tmp_path):
    environ = {"SKILLFORGE_HTTP": "127.0.0.1:9", "SKILLFORGE_HTTP_TOKEN": "t0k"}
    config = load(environ=environ, cwd=tmp_path)
    assert (config.http, config.http_token, config.http_max_bytes) == (
        "127.0.0.1:9",
        "t0k",
        32 << 20,
    )


def test_serve_http_flag_reaches_the_daemon(tmp_path, capsys):
    code = main(["--home", str(tmp_path / "var"), "serve", "--http", "0.0.0.0:0"])
    assert code == 1
    assert "refusing to listen on 0.0.0.0:0 without a token" in capsys.readouterr().err


def test_runs_over_http_start_a_cycle_like_runs_in_the_inbox(tmp_path, airline_records):
    settings = {
        "seed": REPO_ROOT / "skills",
        "http": "127.0.0.1:0",
        "http_token": TOKEN,
        "evolve_after": 50,
        "evolve_every_minutes": 600,
        "sweep_seconds": 0.2,
    }
    config = load(environ={}, cwd=tmp_path, overrides=settings)
    lines: list[str] = []
    daemon = Daemon(config, say=lines.append)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [line for line in list(lines) if text in line]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r}:\n" + "\n".join(lines))

    try:
        announced = wait_for("http intake on ")
        url = re.search(r"(http://\S+)/v1/trajectories", announced).group(1)
        assert announced.endswith("(bearer token required)")
        records = [r for r in airline_records if r["trial"] in (0, 1)]
        request = urllib.request.Request(
            url + "/v1/trajectories",
            data=json.dumps(records).encode(),
            headers={**AUTH, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.loads(response.read())["accepted"] == len(records)
        assert "skill changes on branch evolve/" in wait_for("proposal ")
    finally:
        daemon.stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive() and lines[-1] == "skillforge stopped"
