"""The OpenAPI 3.1 document of HTTP intake, served at `GET /v1/openapi.json`.

Written by hand beside the routes in `http_intake.py` (a test keeps the two in step); the
trajectory schema comes from the pydantic model, so it cannot drift from what is validated.
"""

from __future__ import annotations

from typing import Any

from evolver.model import Trajectory

VERSION = "1"


def _schema(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(description: str) -> dict[str, Any]:
    return _json(_schema("Errors"), description)


def _body_errors(unsupported: str) -> dict[str, Any]:
    """The answers of a route that takes a body, besides its own 200/202 and 400."""
    return {
        "401": _errors("The bearer token is missing or wrong."),
        "408": _errors("The body did not arrive in time (30 s plus 1 s per 64 KiB)."),
        "411": _errors("No Content-Length."),
        "413": _errors("The body (inflated, if gzip) is over the size limit (http_max_bytes)."),
        "415": _errors(unsupported),
        "503": _errors(
            "The store failed, too many connections, or too many large bodies at once; "
            "nothing was stored, send again (see Retry-After)."
        ),
    }


def _component_schemas() -> dict[str, Any]:
    trajectory = Trajectory.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(trajectory.pop("$defs", {}))
    schemas["Trajectory"] = trajectory
    schemas["ChatRecord"] = {
        "type": "object",
        "description": "An OpenAI Chat Completions message list with the outcome beside it; "
        "other shapes skillforge recognises (tau-bench, tau2-bench, MedAgentBench records) "
        "are accepted too.",
        "required": ["messages"],
        "properties": {
            "messages": {"type": "array", "items": {"type": "object"}},
            "outcome": _schema("Outcome"),
            "reward": {"type": "number"},
            "success": {"type": "boolean"},
        },
        "additionalProperties": True,
    }
    schemas["Record"] = {"anyOf": [_schema("Trajectory"), _schema("ChatRecord")]}
    schemas["Accepted"] = {
        "type": "object",
        "required": ["accepted", "duplicates", "ids"],
        "properties": {
            "accepted": {"type": "integer", "description": "Records stored now."},
            "duplicates": {
                "type": "integer",
                "description": "Records whose id was already stored (a retry is harmless).",
            },
            "outcomes": {
                "type": "integer",
                "description": "Records that brought the outcome of a run stored with its"
                " outcome unknown (set on the stored run); absent when none.",
            },
            "ids": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The id of every record, in the order sent.",
            },
        },
    }
    schemas["Errors"] = {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "reason"],
                    "properties": {
                        "index": {
                            "type": ["integer", "null"],
                            "description": "Which record (from 0; non-blank lines in JSONL), "
                            "or null for the request as a whole.",
                        },
                        "reason": {"type": "string"},
                    },
                },
            },
            "request": {
                "type": "string",
                "description": "Names the request in the quarantine when records were bad.",
            },
        },
    }
    schemas["Status"] = {
        "type": "object",
        "required": ["trajectories", "quarantined", "last_cycle"],
        "properties": {
            "trajectories": {"type": "integer"},
            "succeeded": {"type": "integer"},
            "failed": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "quarantined": {"type": "integer"},
            "not_evolved": {"type": "integer"},
            "last_cycle": {
                "type": ["object", "null"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string"},
                    "started_at": {"type": "string"},
                    "finished_at": {"type": ["string", "null"]},
                },
            },
            "next_cycle": {"type": ["string", "null"]},
        },
    }
    return schemas


def openapi_document() -> dict[str, Any]:
    """The whole document, as a JSON-ready dict."""
    post = {
        "operationId": "postTrajectories",
        "summary": "Store one trajectory or a batch (all or nothing).",
        "description": "A JSON object, a JSON array of them, or JSONL (one per line). If any "
        "record is invalid nothing is stored, the answer lists every problem, and the bad "
        "records go to the quarantine. 202 is sent once the records are on disk.",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _schema("Record"),
                            {"type": "array", "items": _schema("Record"), "minItems": 1},
                        ]
                    }
                },
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "One record per line."}
                },
            },
        },
        "responses": {
            "202": _json(_schema("Accepted"), "Stored (or already stored)."),
            **_body_errors("Neither JSON nor JSONL, or an encoding other than gzip."),
            "400": _errors("Invalid records or a malformed request; nothing was stored."),
        },
    }
    traces = {
        "operationId": "postTraces",
        "summary": "OTLP/HTTP: OpenTelemetry spans from any SDK exporter or Collector.",
        "description": "An ExportTraceServiceRequest, protobuf (application/x-protobuf) or "
        "OTLP JSON. Point an exporter at `<this server>/v1/traces`. Spans wait on disk until "
        "their trace's root span arrives (or the trace goes quiet), then each `invoke_agent` "
        "span with its `execute_tool` spans becomes one trajectory (GenAI semantic "
        "conventions; content capture must be on for the task). 200 is sent once the spans "
        "are on disk, with an ExportTraceServiceResponse in the request's encoding.",
        "requestBody": {
            "required": True,
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        "responses": {
            "200": {
                "description": "The spans are stored; partialSuccess counts spans refused.",
                "content": {
                    "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            **_body_errors("Neither protobuf nor JSON, or an encoding other than gzip."),
            "400": _errors("Not an OTLP trace export."),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "skillforge HTTP intake",
            "version": VERSION,
            "description": "Agents send trajectories to a running `skillforge serve --http`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/trajectories": {"post": post},
            "/v1/traces": {"post": traces},
            "/v1/status": {
                "get": {
                    "operationId": "getStatus",
                    "summary": "Counts of the store and the last cycle.",
                    "responses": {
                        "200": _json(_schema("Status"), "The store at a glance."),
                        "401": _errors("The bearer token is missing or wrong."),
                        "503": _errors("The store failed."),
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenAPI",
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
                }
            },
        },
        "components": {
            "schemas": _component_schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
