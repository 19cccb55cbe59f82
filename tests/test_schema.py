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


def test_the_openapi_schema_validates_without_warnings_and_names_every_path(tmp_path):
    path = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))

    schema = yaml.safe_load(path.read_text())
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == CONTRACT_PATHS
    pledge = schema["paths"]["/api/missions/{mission_id}/pledges"]["post"]
    assert {"201", "400", "401", "403", "404", "409", "422"} <= set(pledge["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in pledge["parameters"])
