"""A static file server for the built web app, on 127.0.0.1 only, with the two headers
that make the page cross-origin isolated (so LiteRT.js may use its threaded
WebAssembly build; any static server works without them, on one thread).

    python mobile_demo/serve.py DIR/web [--port=8000]

Also used by the tests and benchmarks/bench_mobile.py (`serve(folder)`).
"""

import argparse
import functools
import http.server
import threading


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".tflite": "application/octet-stream"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def serve(folder, port=0):
    """Serves folder on 127.0.0.1:port (0: a free port) in a daemon thread. Returns the
    server; its base URL is f"http://127.0.0.1:{server.server_address[1]}/"."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(Handler, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = serve(args.folder, args.port)
    print(f"serving {args.folder} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
