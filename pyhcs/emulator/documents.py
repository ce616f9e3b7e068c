"""JSON documents of both halves: strict validation, ResultError, exit payloads, and the
records computestorage (client) leaves in a layer for the service to read."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final

from pyhcs import hresult as hr
from pyhcs.errors import InvalidJsonError

#: The schema the emulator validates against is Windows 11 21H2's: schema 2.6 (x.y covers
#: x.0 .. x.y; schema 1.x is not spoken).
SUPPORTED_SCHEMA_VERSIONS: Final = ({"Major": 2, "Minor": 6},)
#: The "Format" marker of the emulator's saved-state files (written by Save ToFile).
SAVED_STATE_FORMAT: Final = "pyhcs-emulator-saved-state/1"
#: Deepest nesting of arrays and objects a document may have (HCS documents use about ten).
MAX_DEPTH: Final = 64
#: In a writable layer whose storage filter is attached: what the attach copied in.
ATTACH_RECORD: Final = ".pyhcs-attached.json"
#: In a layer: its parent chain, as written by HcsInitializeWritableLayer / SetupBaseOSLayer.
CHAIN: Final = "layerchain.json"


def check_schema_version(doc: dict[str, Any]) -> None:
    """A document declaring a SchemaVersion the service does not speak is refused."""
    version = doc.get("SchemaVersion")
    if not isinstance(version, dict):
        return
    major, minor = version.get("Major", 2), version.get("Minor", 0)
    if not any(major == v["Major"] and minor <= v["Minor"] for v in SUPPORTED_SCHEMA_VERSIONS):
        raise InvalidJsonError(
            f"schema version {major}.{minor} is not supported (supported: 2.0 .. 2.6)",
            json_path="$.SchemaVersion",
        )


def parse_object(text: str | None, *, allow_empty: bool = True) -> dict[str, Any]:
    """Parse a JSON object; NULL/empty means ``{}`` where allowed. Raises InvalidJsonError."""
    if text is None or text.strip() == "":
        if allow_empty:
            return {}
        raise InvalidJsonError("a JSON document is required", json_path="$")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidJsonError(
            f"malformed JSON: {exc.msg} at offset {exc.pos}", json_path="$"
        ) from exc
    except RecursionError as exc:
        raise InvalidJsonError(
            f"the document nests deeper than {MAX_DEPTH} levels", json_path="$"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidJsonError("the document must be a JSON object", json_path="$")
    if _depth(value) > MAX_DEPTH:
        raise InvalidJsonError(f"the document nests deeper than {MAX_DEPTH} levels", json_path="$")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of arrays and objects, counted without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                pending.extend((item, level + 1) for item in node)
    return deepest


def validate(kind: str, doc: dict[str, Any]) -> None:
    """Strict check of one document kind ("ComputeSystem", "ProcessParameters", ...).

    The schema's strict mode rejects unknown and mistyped fields with their JSON path, as
    HCS's deserializer does; the rules the schema cannot express are checked here.
    """
    # Imported here: the pydantic models take most of the service's start-up time, and many
    # requests (and every ``status``/``stop``) never validate a document.
    from pyhcs import schema  # noqa: PLC0415

    model = schema.definition(kind)
    if not issubclass(model, schema.HcsModel):
        raise TypeError(f"{kind} is not an object definition")
    release = None
    if kind == "ComputeSystem":
        # A document is held to the schema of the version it declares: a field or enum value
        # newer than that is unknown to it (the docs' Schema Version Map).
        check_schema_version(doc)
        version = doc.get("SchemaVersion")
        if isinstance(version, dict) and isinstance(version.get("Minor"), int):
            release = schema.release_for_schema_version(2, int(version["Minor"]))
    model.parse(doc, strict=True, release=release)
    if kind == "ComputeSystem":
        bodies = [k for k in ("Container", "VirtualMachine", "HostedSystem") if k in doc]
        if len(bodies) != 1:
            raise InvalidJsonError(
                "exactly one of Container, VirtualMachine, HostedSystem must be set",
                json_path="$",
            )
        if "HostedSystem" in doc and not doc.get("HostingSystemId"):
            raise InvalidJsonError(
                "a HostedSystem needs the HostingSystemId of the VirtualMachine that hosts it",
                json_path="$.HostingSystemId",
            )


def container_body(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The Container settings of a create document: top-level or inside HostedSystem."""
    body = doc.get("Container")
    if body is None:
        body = (doc.get("HostedSystem") or {}).get("Container")
    return body if isinstance(body, dict) else None


def result_error(hresult: int, message: str | None = None, detail: str | None = None) -> str:
    """A ResultError document whose signed ``Error`` equals the HRESULT the operation returns."""
    doc: dict[str, Any] = {
        "Error": hr.to_signed(hresult),
        "ErrorMessage": message or hr.message(hresult),
    }
    if detail:
        doc["Attribution"] = [{"OperationFailure": {"Detail": detail}}]
    return json.dumps(doc)


def property_responses(
    names: Iterable[str], answer: Callable[[str], Any], refusal: Callable[[str], str]
) -> dict[str, Any]:
    """Schema 2.5 ``PropertyResponses``: for each name its ``Response``, or, where ``answer``
    has none (None), a ResultError ``Error`` (ERROR_NOT_SUPPORTED) saying ``refusal(name)``."""
    responses: dict[str, Any] = {}
    for name in names:
        value = answer(name)
        if value is None:
            error = result_error(hr.ERROR_NOT_SUPPORTED, refusal(name))
            responses[name] = {"Error": json.loads(error)}
        else:
            responses[name] = {"Response": value}
    return responses


def system_exit_status(exit_type: str, detail: str, initiator: str) -> str:
    """SystemExitStatus as delivered with HcsEventSystemExited and by the exit wait."""
    return json.dumps(
        {
            "Status": 0,
            "ExitType": exit_type,
            "Attribution": [{"SystemExit": {"Detail": detail, "Initiator": initiator}}],
        }
    )


def process_status(pid: int, exit_code: int | None) -> str:
    """ProcessStatus; ``exit_code`` None means still running."""
    doc: dict[str, Any] = {"ProcessId": pid, "Exited": exit_code is not None}
    if exit_code is not None:
        doc["ExitCode"] = exit_code & 0xFFFFFFFF
        doc["LastWaitResult"] = 0
    return json.dumps(doc)


def describe(error: InvalidJsonError) -> str:
    """The ErrorMessage for a rejected document: the reason and the JSON path it names."""
    text = str(error.args[0]) if error.args else "invalid JSON"
    path = error.json_path or "$"
    return text if path in text else f"{text} (at {path})"
