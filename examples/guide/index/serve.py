"""A PEP 503 package index on 127.0.0.1:8000 for the duration of one command.

    python3 /index/serve.py -- pip install --index-url=http://127.0.0.1:8000/simple ...

It stands in for PyPI inside the build container (whose network is private): it serves
`packages/*.whl` under `/packages/` with a long `Cache-Control`, so pip's HTTP cache
(the `RUN --mount=type=cache` directory) can answer later builds without downloading,
and a `/simple/<name>/` page per project. The command's exit status is returned.
"""

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PORT = 8000


class IndexHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(ROOT), **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = [p for p in self.path.split("/") if p]
        if parts[:1] == ["simple"] and len(parts) == 2:
            project = parts[1].lower().replace("_", "-")
            links = "".join(
                f'<a href="/packages/{f}">{f}</a>\n'
                for f in sorted(os.listdir(ROOT / "packages"))
                if f.split("-")[0].lower() == project
            )
            body = f"<html><body>\n{links}</body></html>\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self):
        if self.path.startswith("/packages/"):
            self.send_header("Cache-Control", "max-age=31536000, immutable")
        super().end_headers()


def main(argv):
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), IndexHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return subprocess.call(command)
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
