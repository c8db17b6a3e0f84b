"""A minimal client for the twin's API server (the admin certificate, JSON in and out), for the
role players' frequent reads; everything the program declares goes through kubectl and helm."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, Optional


class Api:
    def __init__(self, twin) -> None:
        self.server = twin.server
        self.context = ssl.create_default_context(cafile=str(twin.pki.ca))
        self.context.load_cert_chain(str(twin.pki.admin_cert), str(twin.pki.admin_key))

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> Optional[dict]:
        """The decoded answer; None for 404 (the object or the resource type does not exist)."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(10):
            request = urllib.request.Request(self.server + path, data=data, method=method,
                                             headers={"Content-Type": content_type, "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return None
                if error.code == 429:  # a resource just registered: "storage is (re)initializing"
                    time.sleep(float(error.headers.get("Retry-After") or 1))
                    continue
                raise RuntimeError(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}") from None
        raise RuntimeError(f"{method} {path}: still 429 (too many requests) after 10 attempts")

    def items(self, path: str) -> list[dict]:
        found = self.request("GET", path)
        return found.get("items", []) if found else []

    def merge_status(self, path: str, status: dict) -> None:
        self.request("PATCH", path + "/status", {"status": status}, "application/merge-patch+json")
