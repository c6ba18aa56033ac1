"""The guide's server: answers every GET with a greeting."""

from http.server import BaseHTTPRequestHandler, HTTPServer

from greetings import greeting
from palette import paint


class Greeter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (greeting("from the strata guide") + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print(paint("listening on :8080", "green"), flush=True)
HTTPServer(("", 8080), Greeter).serve_forever()
