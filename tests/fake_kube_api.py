"""A stand-in Kubernetes API on 127.0.0.1 for the backup job: `GET` of a Secret by name.

Modelled on kube-apiserver: a bearer token is required (401 without), `Accept: application/yaml`
gets the object as YAML with sorted keys and two-space indentation (sigs.k8s.io/yaml, which
marshals through JSON), a missing object is a 404 Status. The stored objects carry what the API
server adds itself (uid, resourceVersion, creationTimestamp, managedFields).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

TOKEN = "service-account-token"


def served(obj: dict) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False)


def start(objects: dict[tuple[str, str], dict]) -> tuple[ThreadingHTTPServer, list[str]]:
    """Serve `objects` ((namespace, name) → Secret); returns the server and the paths requested."""
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status: int, body: str, content_type: str):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            requested.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._reply(401, json.dumps({"kind": "Status", "code": 401, "reason": "Unauthorized"}),
                                   "application/json")
            match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets/([^/?]+)", self.path)
            obj = objects.get((match[1], match[2])) if match else None
            if obj is None:
                status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                          "code": 404, "message": f'secrets "{match[2] if match else "?"}" not found'}
                return self._reply(404, json.dumps(status), "application/json")
            if "application/yaml" in (self.headers.get("Accept") or ""):
                return self._reply(200, served(obj), "application/yaml")
            return self._reply(200, json.dumps(obj), "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requested
