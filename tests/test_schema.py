"""The OpenAPI schema at /api/schema says what the server really answers.

schemathesis (tests/test_schemathesis.py) checks it against the running server; a client
generated from it runs the mission story (tests/test_generated_client.py). These tests
pin what a client reads from it.
"""

import pytest
import yaml
from django.core.management import call_command

CONTRACT_PATHS = {
    "/api/auth/register",
    "/api/auth/token",
    "/api/auth/token/refresh",
    "/api/auth/logout",
    "/api/auth/password",
    "/api/users/me",
    "/api/users/{username}",
    "/api/wallet",
    "/api/wallet/topups",
    "/api/wallet/transactions",
    "/api/missions",
    "/api/missions/{mission_id}",
    "/api/missions/{mission_id}/pledges",
    "/api/missions/{mission_id}/accept",
    "/api/missions/{mission_id}/reject",
    "/api/missions/{mission_id}/success",
    "/api/missions/{mission_id}/fail",
    "/api/missions/{mission_id}/events",
}

# Every status code each operation can answer. 401: a bad or expired token is refused
# wherever a token is read (even where none is needed); 429: every operation is throttled;
# 400 and 415: a body that is not valid JSON, or not JSON at all; 404 on a list: a page
# number past the end.
DECIDE = {"200", "401", "403", "404", "409", "429"}
STATUS_CODES = {
    ("post", "/api/auth/register"): {"201", "400", "401", "415", "429"},
    ("post", "/api/auth/token"): {"200", "400", "401", "415", "429"},
    ("post", "/api/auth/token/refresh"): {"200", "400", "401", "415", "429"},
    ("post", "/api/auth/password"): {"204", "400", "401", "415", "429"},
    ("post", "/api/auth/logout"): {"204", "400", "401", "403", "415", "429"},
    ("get", "/api/users/me"): {"200", "401", "429"},
    ("get", "/api/users/{username}"): {"200", "401", "404", "429"},
    ("get", "/api/wallet"): {"200", "401", "429"},
    ("post", "/api/wallet/topups"): {"201", "400", "401", "402", "415", "422", "429"},
    ("get", "/api/wallet/transactions"): {"200", "401", "404", "429"},
    ("get", "/api/missions"): {"200", "400", "401", "404", "429"},
    ("post", "/api/missions"): {"201", "400", "401", "415", "422", "429"},
    ("get", "/api/missions/{mission_id}"): {"200", "401", "404", "429"},
    ("put", "/api/missions/{mission_id}"): {"401", "404", "405", "429"},
    ("patch", "/api/missions/{mission_id}"): {"401", "404", "405", "429"},
    ("delete", "/api/missions/{mission_id}"): {"401", "404", "405", "429"},
    ("get", "/api/missions/{mission_id}/pledges"): {"200", "401", "404", "429"},
    ("post", "/api/missions/{mission_id}/pledges"): {"201", "400", "401", "403", "404", "409", "415", "422", "429"},
    ("post", "/api/missions/{mission_id}/accept"): DECIDE,
    ("post", "/api/missions/{mission_id}/reject"): DECIDE,
    ("post", "/api/missions/{mission_id}/success"): DECIDE,
    ("post", "/api/missions/{mission_id}/fail"): DECIDE,
    ("get", "/api/missions/{mission_id}/events"): {"200", "401", "404", "429"},
}
METHODS = {"get", "put", "patch", "post", "delete", "head", "options", "trace"}
MONEY_POSTS = ["/api/wallet/topups", "/api/missions", "/api/missions/{mission_id}/pledges"]


@pytest.fixture
def schema(api_client) -> dict:
    """The schema as a client downloads it."""
    response = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        *_, name = node["$ref"].split("/")
        node = schema["components"]["schemas"][name]
    return node


def json_body(schema: dict, response_or_body: dict) -> dict:
    return resolve(schema, response_or_body["content"]["application/json"]["schema"])


def test_the_openapi_schema_validates_without_warnings_and_names_every_path(tmp_path):
    path = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))

    schema = yaml.safe_load(path.read_text())
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == CONTRACT_PATHS
    pledge = schema["paths"]["/api/missions/{mission_id}/pledges"]["post"]
    assert {"201", "400", "401", "403", "404", "409", "422"} <= set(pledge["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in pledge["parameters"])


@pytest.mark.django_db(databases=["default", "accounts"])
class TestOpenApiSchema:
    def test_lists_every_status_code_each_operation_answers_with_the_error_body(self, schema):
        documented = {(method, path): set(op["responses"]) for method, path, op in operations(schema)}

        assert documented == STATUS_CODES
        for method, path, operation in operations(schema):
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
                    assert response["description"], (method, path, code)

    def test_describes_the_error_body_every_4xx_carries(self, schema):
        error = schema["components"]["schemas"]["Error"]

        assert set(error["required"]) == {"code", "detail"}
        assert set(error["properties"]) == {"code", "detail", "errors"}

    @pytest.mark.parametrize("path", ["/api/missions", "/api/wallet/transactions"])
    def test_describes_paginated_lists_as_pages_with_a_page_parameter(self, schema, path):
        operation = schema["paths"][path]["get"]

        page = json_body(schema, operation["responses"]["200"])
        assert page["type"] == "object"
        assert set(page["properties"]) == {"count", "next", "previous", "results"}
        assert set(page["required"]) == {"count", "next", "previous", "results"}
        assert page["properties"]["results"]["type"] == "array"
        assert page["properties"]["next"]["nullable"] is True
        parameter = next(p for p in operation["parameters"] if p["name"] == "page")
        assert parameter["in"] == "query"
        assert parameter["schema"] == {"type": "integer", "minimum": 1}

    def test_asks_only_a_username_and_password_for_a_token_and_answers_the_pair(self, schema):
        operation = schema["paths"]["/api/auth/token"]["post"]

        request = json_body(schema, operation["requestBody"])
        response = json_body(schema, operation["responses"]["200"])
        assert set(request["properties"]) == set(request["required"]) == {"username", "password"}
        assert set(response["properties"]) == set(response["required"]) == {"access", "refresh"}

    def test_asks_only_a_refresh_token_to_refresh_and_answers_the_new_pair(self, schema):
        operation = schema["paths"]["/api/auth/token/refresh"]["post"]

        request = json_body(schema, operation["requestBody"])
        response = json_body(schema, operation["responses"]["200"])
        assert set(request["properties"]) == set(request["required"]) == {"refresh"}
        assert set(response["properties"]) == set(response["required"]) == {"access", "refresh"}

    def test_takes_request_bodies_as_json_only(self, schema):
        bodies = {(method, path): op["requestBody"] for method, path, op in operations(schema) if "requestBody" in op}

        assert {path for _, path in bodies} >= {"/api/auth/token", "/api/auth/token/refresh", *MONEY_POSTS}
        for key, body in bodies.items():
            assert set(body["content"]) == {"application/json"}, key

    def test_reads_amount_and_duration_limits_from_the_settings(self, api_client, settings):
        settings.MISSIONHUB_PLEDGE_MAX = 777_000
        settings.MISSIONHUB_MIN_MISSION_SECONDS = 90

        schema = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

        components = schema["components"]["schemas"]
        assert components["TopupInput"]["properties"]["amount"] == {
            "type": "integer",
            "minimum": settings.MISSIONHUB_TOPUP_MIN,
            "maximum": settings.MISSIONHUB_TOPUP_MAX,
        }
        assert components["PledgeInput"]["properties"]["amount"] == {
            "type": "integer",
            "minimum": settings.MISSIONHUB_PLEDGE_MIN,
            "maximum": 777_000,
        }
        mission = components["MissionListCreateInput"]["properties"]
        assert mission["amount"]["maximum"] == 777_000
        assert mission["duration_seconds"] == {
            "type": "integer",
            "minimum": 90,
            "maximum": settings.MISSIONHUB_MAX_MISSION_SECONDS,
        }

    @pytest.mark.parametrize("path", MONEY_POSTS)
    def test_bounds_the_idempotency_key_and_names_the_replay_header(self, schema, path):
        operation = schema["paths"][path]["post"]

        key = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
        assert key["in"] == "header"
        assert key.get("required", False) is False
        assert key["schema"]["minLength"] == 1
        assert key["schema"]["maxLength"] == 255
        assert operation["responses"]["201"]["headers"]["Idempotent-Replayed"]["schema"] == {
            "type": "string",
            "enum": ["true"],
        }

    def test_names_retry_after_on_every_429(self, schema):
        for method, path, operation in operations(schema):
            header = operation["responses"]["429"]["headers"]["Retry-After"]

            assert header["schema"]["type"] == "integer", (method, path)
            assert header["required"] is True

    def test_offers_only_the_jwt_bearer_scheme(self, schema):
        assert schema["components"]["securitySchemes"] == {
            "jwtAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        for _, _, operation in operations(schema):
            for requirement in operation.get("security", []):
                assert set(requirement) <= {"jwtAuth"}

    def test_asks_for_no_token_to_register_or_sign_in(self, schema):
        for path in ("/api/auth/register", "/api/auth/token", "/api/auth/token/refresh"):
            assert schema["paths"][path]["post"].get("security", []) == [], path

    def test_describes_users_me_for_clients(self, schema):
        description = schema["paths"]["/api/users/me"]["get"]["description"]

        assert "balance" in description
        for internal in ("ledger", "accounts", "import"):
            assert internal not in description
