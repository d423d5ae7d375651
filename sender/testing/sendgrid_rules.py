"""What the local SendGrid checks in a mail/send body, as SendGrid would.

Two layers: the request schema from SendGrid's own OpenAPI description
(tsg_mail_v3.yaml), compiled once into a jsonschema validator, then the
documented limits the schema cannot express (recipients per request, unique
addresses, substitution and custom-arg sizes, protected headers).
"""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastjsonschema
import yaml

SPEC_ENV = "SENDGRID_OPENAPI"
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
MAX_CUSTOM_ARG_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
MAX_BODY_BYTES = 30 * 1024 * 1024
PROTECTED_HEADERS = frozenset(
    {
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
        "received",
        "x-sg-id",
        "x-sg-eid",
    }
)


@dataclass(frozen=True)
class FieldError:
    message: str
    field: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"message": self.message, "field": self.field}


def spec_path() -> Path:
    """SendGrid's mail OpenAPI file (MIT), bundled beside this module."""
    found = os.environ.get(SPEC_ENV)
    return Path(found) if found else Path(__file__).with_name("tsg_mail_v3.yaml")


def inline_refs(node: Any, schemas: dict[str, Any]) -> Any:
    """Replace each `#/components/schemas/X` reference by a copy of X.

    The mail/send schema's references are few and not recursive. Inlined,
    fastjsonschema's generated code validates each recipient without a call
    per reference, whose error-path formatting (`locals()`) was a third of
    the cost on 1,000 personalizations.
    """
    if isinstance(node, list):
        return [inline_refs(item, schemas) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        target = schemas[ref.rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return inline_refs(merged, schemas)
    return {key: inline_refs(value, schemas) for key, value in node.items()}


def request_schema(path: Path) -> dict[str, Any]:
    """The mail/send request body schema, self-contained for jsonschema."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    body = spec["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]
    schema: dict[str, Any] = copy.deepcopy(body["schema"])
    # Known quirk of the spec: message-level custom_args is an object in practice.
    schema["properties"]["custom_args"] = {
        "type": ["object", "string"],
        "additionalProperties": {"type": "string"},
    }
    # SendGrid documents custom-arg values as strings; the spec leaves them open.
    personal = schema["properties"]["personalizations"]["items"]["properties"]
    personal["custom_args"]["additionalProperties"] = {"type": "string"}
    schema = inline_refs(schema, spec["components"]["schemas"])
    # The keywords this schema uses mean the same in draft 7, which fastjsonschema
    # compiles to Python: ~4x faster than jsonschema on 1,000 personalizations.
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return schema


Validator = Callable[[Any], Any]


@lru_cache(maxsize=4)
def compiled_validator(path: Path) -> Validator:
    validate: Validator = fastjsonschema.compile(request_schema(path))
    return validate


def _dotted(parts: list[str]) -> str | None:
    items = [p for p in parts if p != "data"]
    return ".".join(items) if items else None


def schema_errors(body: Any, validate: Validator) -> list[FieldError]:
    """The first schema violation (fastjsonschema stops at the first)."""
    try:
        validate(body)
    except fastjsonschema.JsonSchemaValueException as err:
        message = err.message.replace("data.", "", 1).replace("data ", "body ", 1)
        return [FieldError(message[:300], _dotted(list(err.path or [])))]
    return []


def _size(mapping: dict[str, str]) -> int:
    """UTF-8 size of keys and values (the schema made them all strings)."""
    chars = sum(map(len, mapping)) + sum(map(len, mapping.values()))
    if chars * 4 <= min(MAX_SUBSTITUTION_BYTES, MAX_CUSTOM_ARG_BYTES):
        return chars  # at most 4 bytes a character: far enough below either limit
    return len("".join(mapping).encode()) + len("".join(mapping.values()).encode())


def _personalization_errors(index: int, item: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    subs = item.get("substitutions")
    if subs and isinstance(subs, dict) and _size(subs) > MAX_SUBSTITUTION_BYTES:
        errors.append(
            FieldError(
                f"substitutions may not exceed {MAX_SUBSTITUTION_BYTES} bytes per personalization",
                f"personalizations.{index}.substitutions",
            )
        )
    args = item.get("custom_args")
    if args and isinstance(args, dict) and _size(args) > MAX_CUSTOM_ARG_BYTES:
        errors.append(
            FieldError(
                f"custom_args may not exceed {MAX_CUSTOM_ARG_BYTES} bytes per personalization",
                f"personalizations.{index}.custom_args",
            )
        )
    headers = item.get("headers")
    if headers and not _allowed_headers(headers):
        errors.extend(_header_errors(headers, f"personalizations.{index}.headers"))
    return errors


@lru_cache(maxsize=256)
def _protected(name: str) -> bool:
    lowered = name.lower()
    return lowered in PROTECTED_HEADERS or lowered.startswith("x-sg-")


def _allowed_headers(headers: Any) -> bool:
    """No protected name: the usual answer, found with one cached lookup per name."""
    return isinstance(headers, dict) and not any(map(_protected, headers))


def _header_errors(headers: Any, field: str) -> list[FieldError]:
    if not isinstance(headers, dict):
        return []
    return [
        FieldError(f"the {name} header may not be set in headers", field)
        for name in headers
        if _protected(name)
    ]


def _recipient_errors(personalizations: list[Any]) -> list[FieldError]:
    seen: set[str] = set()
    total = 0
    for index, item in enumerate(personalizations):
        for kind in ("to", "cc", "bcc"):
            for address in item.get(kind) or []:
                total += 1
                email = str(address.get("email", "")).strip().lower()
                if email in seen:
                    return [
                        FieldError(
                            "Each email address in the personalization block should be unique "
                            "between to, cc, and bcc across the request",
                            f"personalizations.{index}.{kind}",
                        )
                    ]
                seen.add(email)
    if total > MAX_RECIPIENTS:
        return [
            FieldError(
                f"the request holds {total} recipients; at most {MAX_RECIPIENTS} are allowed",
                "personalizations",
            )
        ]
    return []


def _category_errors(categories: Any) -> list[FieldError]:
    if not isinstance(categories, list):
        return []
    if len(categories) > MAX_CATEGORIES:
        return [FieldError(f"at most {MAX_CATEGORIES} categories are allowed", "categories")]
    return [
        FieldError(f"a category may hold at most {MAX_CATEGORY_LENGTH} characters", "categories")
        for c in categories
        if isinstance(c, str) and len(c) > MAX_CATEGORY_LENGTH
    ][:1]


def limit_errors(body: dict[str, Any]) -> list[FieldError]:
    """The documented limits beyond the schema; assumes the schema passed."""
    personalizations = body.get("personalizations") or []
    errors: list[FieldError] = []
    if len(personalizations) > MAX_PERSONALIZATIONS:
        errors.append(
            FieldError(
                f"at most {MAX_PERSONALIZATIONS} personalizations are allowed", "personalizations"
            )
        )
    if not personalizations:
        errors.append(FieldError("at least one personalization is required", "personalizations"))
    errors.extend(_recipient_errors(personalizations))
    for index, item in enumerate(personalizations):
        found = _personalization_errors(index, item)
        if found:
            errors.extend(found)
    errors.extend(_category_errors(body.get("categories")))
    errors.extend(_header_errors(body.get("headers"), "headers"))
    if not body.get("template_id") and not body.get("content"):
        errors.append(FieldError("content is required unless template_id is set", "content"))
    if not body.get("subject") and any(not p.get("subject") for p in personalizations):
        errors.append(FieldError("a subject is required", "subject"))
    return errors


_STR_ONLY = frozenset({str})


def _well_formed(items: list[Any]) -> bool:
    """A cheap pass over every personalization for what recording relies on.

    Used when the schema checks only a sample: anything unusual here sends
    the whole body through the full schema, which names the exact field.
    """
    for item in items:
        if type(item) is not dict:
            return False
        for kind in ("to", "cc", "bcc"):
            addresses = item.get(kind)
            if addresses is None and kind != "to":
                continue
            if type(addresses) is not list:
                return False
            for address in addresses:
                if type(address) is not dict:
                    return False
                email = address.get("email")
                if type(email) is not str or "@" not in email:
                    return False
        for key in ("substitutions", "custom_args", "headers"):
            mapping = item.get(key)
            if mapping is not None and (
                type(mapping) is not dict or not set(map(type, mapping.values())) <= _STR_ONLY
            ):
                return False
        subject = item.get("subject")
        if subject is not None and (type(subject) is not str or not subject):
            return False
    return True


def _sampled(body: dict[str, Any], size: int) -> dict[str, Any]:
    """The body with the first, the last and a seeded sample of personalizations."""
    items = body["personalizations"]
    chosen = random.Random(len(items)).sample(range(1, len(items) - 1), max(size - 2, 0))
    picks = sorted({0, len(items) - 1, *chosen})
    return {**body, "personalizations": [items[i] for i in picks]}


def check_body(
    raw: bytes, path: Path | None = None, sample: int = 0
) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """Parse and check a mail/send body: the parsed body, or the errors.

    `sample` > 0 runs the schema on that many personalizations (plus the
    envelope) when a cheap pass finds every personalization well formed; the
    limit checks always cover all of them.
    """
    try:
        body = json.loads(raw)
    except ValueError as err:
        return None, [FieldError(f"the request body is not valid JSON: {err}", None)]
    if not isinstance(body, dict):
        return None, [FieldError("the request body must be a JSON object", None)]
    validate = compiled_validator(path or spec_path())
    items = body.get("personalizations")
    if sample > 0 and isinstance(items, list) and len(items) > sample and _well_formed(items):
        errors = schema_errors(_sampled(body, sample), validate)
        if errors:  # name the field by its real position
            errors = schema_errors(body, validate)
    else:
        errors = schema_errors(body, validate)
    if errors:
        return None, errors
    errors = limit_errors(body)
    return (None, errors) if errors else (body, [])
