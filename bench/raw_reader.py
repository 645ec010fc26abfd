"""The raw limit: receive N WebSocket frames and discard them (websocket-client, UTF-8 check off).

    python bench/raw_reader.py WS_URL START_URL COUNT   -> prints frames/s
"""

from __future__ import annotations

import sys
import time

import requests
import websocket


def main(ws_url: str, start_url: str, count: int) -> None:
    ws = websocket.create_connection(ws_url, skip_utf8_validation=True, timeout=30)
    requests.post(start_url, timeout=5)
    _opcode, _ = ws.recv_data()
    t0 = time.perf_counter()
    for _ in range(count - 1):
        ws.recv_data()
    elapsed = time.perf_counter() - t0
    print(f"{(count - 1) / elapsed:.0f}")
    ws.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
