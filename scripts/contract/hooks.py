"""Schemathesis hooks for the finsec reference server.

Authentication: every generated request carries a bearer access token of the user named by
FINSEC_CONTRACT_USER. The token comes from a real login and is renewed every few seconds,
because the fuzzer itself calls `/auth/logout` (which revokes the token it was sent with).
"""

import json
import os
import urllib.request

import schemathesis

BASE = os.environ["FINSEC_CONTRACT_BASE"]
USER = os.environ["FINSEC_CONTRACT_USER"]
PASSWORD = os.environ["FINSEC_CONTRACT_PASSWORD"]


# The remembered-device token of the first login: the fuzzer's failed logins in USER's name
# (after 100 in a row the account refuses devices without one) never hold this client back.
DEVICE = {}


def login() -> str:
    credentials = {"username": USER, "password": PASSWORD}
    if "token" in DEVICE:
        credentials["device_token"] = DEVICE["token"]
    body = json.dumps(credentials).encode()
    request = urllib.request.Request(
        f"{BASE}/auth/login",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    if answer.get("device_token"):
        DEVICE["token"] = answer["device_token"]
    token = answer.get("access_token")
    if not token:
        raise RuntimeError(f"login of {USER} returned no access token: {answer}")
    return token


@schemathesis.auth(refresh_interval=2)
class BearerToken:
    def get(self, case, context):
        return login()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
