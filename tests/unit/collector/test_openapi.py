"""The OpenAPI document is built from the route modules and matches the app's router exactly."""

from __future__ import annotations

import json
import re

import pytest

from cmdb.config import CollectorConfig
from collector.openapi import build_document, registered_operations
from collector.roles import route_access


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from cmdb.backends.sqlite import SQLiteStore
    from collector.app import create_app

    store = SQLiteStore(tmp_path_factory.mktemp("openapi") / "db.sqlite")
    try:
        yield create_app(store, CollectorConfig(reconcile=False))
    finally:
        store.close()


@pytest.fixture(scope="module")
def document(app):
    return build_document(app)


def _operations(document):
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_every_route_and_method_is_in_the_document(app, document):
    """A route whose module declares no OPENAPI (next to its RouteTableDef) fails here, by name."""
    missing = sorted(f"{m.upper()} {p}" for m, p in registered_operations(app) - _operations(document))
    assert not missing, f"routes missing from /api/v1/openapi.json (declare them in their module's OPENAPI): {missing}"


def test_the_document_has_no_operation_the_app_lacks(app, document):
    assert _operations(document) <= registered_operations(app)


def test_path_parameters_are_declared(document):
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method.upper()} {path}"


def test_every_reference_resolves(document):
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in document["components"]["schemas"], ref


def test_security_and_roles_come_from_the_access_table(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            access = route_access(method.upper(), path)
            assert access is not None
            if access.public:
                assert operation["security"] == [] and "x-fleetgraph-roles" not in operation
            else:
                assert operation["x-fleetgraph-roles"] == sorted(access.roles)
                assert {"401", "403", "429", "500"} <= set(operation["responses"])
            for response in operation["responses"].values():
                assert "X-Request-Id" in response["headers"]


def test_shapes_come_from_the_msgspec_structs(document):
    schemas = document["components"]["schemas"]
    assert set(schemas["CIList"]["required"]) == {"items", "count", "limit", "offset", "next_offset"}
    assert schemas["Report"]["properties"]["schema"]["enum"] == ["fleetgraph.report/1"]
    assert "scanner" in schemas["EnrollRequest"]["properties"]["kind"]["enum"]


def test_schemathesis_accepts_every_operation(document):
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    results = list(schema.get_all_operations())
    errors = [str(r.err()) for r in results if hasattr(r, "err")]
    assert not errors
    assert len(results) == len(_operations(document))
