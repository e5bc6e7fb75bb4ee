"""Asks GET <url> every 20 ms until its standard input closes, then prints the seconds each
answer took, as a JSON list. A process of its own, so that the suite's work (sending hostile
documents from its event loop) is not counted as the server's."""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx


def main(url: str) -> None:
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    took: list[float] = []
    with httpx.Client(timeout=30) as client:
        while not done.is_set():
            began = time.monotonic()
            status = client.get(url).status_code
            took.append(time.monotonic() - began)
            if status != 200:
                raise SystemExit(f"{url} answered {status}")
            done.wait(0.02)
    print(json.dumps(took))


if __name__ == "__main__":
    main(sys.argv[1])
