"""A stand-in Gitea on 127.0.0.1 for running the seed Job's script for real.

It answers the handful of API calls the script makes, with Gitea's status codes, and serves real
git over smart HTTP through `git http-backend`, backed by bare repositories in a temp directory.
Every request is recorded, so tests can tell what a run changed.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class State:
    root: Path
    user: str
    password: str
    orgs: set[str] = field(default_factory=set)
    repos: set[tuple[str, str]] = field(default_factory=set)
    keys: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    hooks: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def writes(self) -> list[str]:
        """Every request that changed something: API creations and git pushes."""
        return [path for method, path in self.calls if method == "POST"]


def _handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status: int, body=None):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            expected = base64.b64encode(f"{state.user}:{state.password}".encode()).decode()
            return self.headers.get("Authorization") == f"Basic {expected}"

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def _route(self, method: str):
            path = self.path.split("?")[0]
            state.calls.append((method, path))
            if path == "/api/healthz":
                return self._reply(200, {"status": "pass"})
            if not self._authorized():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="Gitea"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if re.match(r"^/[^/]+/[^/]+\.git/", path):
                return self._git(method)
            body = json.loads(self._body() or b"null")
            if m := re.fullmatch(r"/api/v1/orgs/([^/]+)", path):
                return self._reply(200 if m[1] in state.orgs else 404, {"username": m[1]})
            if path == "/api/v1/orgs" and method == "POST":
                state.orgs.add(body["username"])
                return self._reply(201, body)
            if m := re.fullmatch(r"/api/v1/orgs/([^/]+)/repos", path):
                state.repos.add((m[1], body["name"]))
                repo = state.root / m[1] / f"{body['name']}.git"
                subprocess.run(["git", "init", "-q", "--bare", "-b", body["default_branch"], str(repo)], check=True)
                subprocess.run(["git", "-C", str(repo), "config", "http.receivepack", "true"], check=True)
                return self._reply(201, body)
            if m := re.fullmatch(r"/api/v1/repos/([^/]+)/([^/]+)", path):
                return self._reply(200 if (m[1], m[2]) in state.repos else 404, {"name": m[2]})
            if m := re.fullmatch(r"/api/v1/repos/([^/]+)/([^/]+)/(keys|hooks)", path):
                table = state.keys if m[3] == "keys" else state.hooks
                items = table.setdefault((m[1], m[2]), [])
                if method == "POST":
                    items.append({"id": len(items) + 1, **body})
                    return self._reply(201, items[-1])
                return self._reply(200, items)
            return self._reply(404, {"message": "not found"})

        def _git(self, method: str):
            path, _, query = self.path.partition("?")
            env = {"GIT_PROJECT_ROOT": str(state.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                   "QUERY_STRING": query, "REQUEST_METHOD": method, "REMOTE_USER": state.user,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "PATH": "/usr/bin:/bin"}
            cgi = subprocess.run(["git", "http-backend"], input=self._body(), env=env, capture_output=True, check=True)
            head, _, payload = cgi.stdout.partition(b"\r\n\r\n")
            headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
            self.send_response(status)
            for key, value in headers:
                if key.lower() != "status":
                    self.send_header(key, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def start(root: Path, user: str, password: str) -> tuple[ThreadingHTTPServer, State]:
    state = State(root=root, user=user, password=password)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state
