"""Imported real inputs (`inputs`) in the job body: stored in the spec as given, and every bad one
refused with a 422 naming its place."""

import pytest

from app.config import get_settings

BODY = {"task": "Decide whether an SMS message is spam or a normal message", "labels": ["spam", "ham"]}
LOGS = ["WIN a free cruise, text YES now", "see you at 6 for dinner?", "Ünïcode is fine ✓"]


def test_a_body_with_inputs_is_accepted_and_kept_in_the_spec(client):
    response = client.post("/api/jobs", json={**BODY, "inputs": LOGS})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["spec"]["inputs"] == LOGS
    assert client.get(f"/api/jobs/{job['id']}").json()["spec"]["inputs"] == LOGS


@pytest.mark.parametrize("inputs,field", [
    ("one log line", "inputs"),
    (["fine", "   "], "inputs.1"),
    ([{"input": "an object"}], "inputs.0"),
    (["a\u0000b"], "inputs.0"),
    (["x" * (get_settings().max_row_chars + 1)], "inputs.0"),
])
def test_bad_inputs_are_422_naming_the_place(client, inputs, field):
    response = client.post("/api/jobs", json={**BODY, "inputs": inputs})
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_more_inputs_than_max_rows_are_422(client, settings_env):
    settings_env(MAX_ROWS="3")
    response = client.post("/api/jobs", json={**BODY, "inputs": ["a", "b", "c", "d"]})
    assert response.status_code == 422, response.text
    assert "4 inputs given; the limit is 3" in response.json()["error"]["message"]
