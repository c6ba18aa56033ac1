"""The guide's client: asks the server for a greeting."""

import sys
import urllib.request

url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8080/"
with urllib.request.urlopen(url) as response:
    print(response.read().decode())
