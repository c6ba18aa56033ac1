"""The guide's client: asks the server for a greeting and prints it framed."""

import sys
import urllib.request

from banner import banner
from greetings import greeting

url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8080/"
try:
    with urllib.request.urlopen(url) as response:
        print(banner(response.read().decode().strip()))
except OSError:
    print(banner(greeting("client") + " (no server at " + url + ")"))
