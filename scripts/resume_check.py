"""A client nobody here wrote (Python's `websockets`) drops its connection mid-run, resumes with
since/epoch, and checks that every position of the run arrived exactly once, in order.

Usage: resume_check.py WS_URL_BASE TOKEN   (e.g. ws://127.0.0.1:9321 <token>)
Exit 0 when the stream checks out; 1 with a message otherwise.
"""
import asyncio
import json
import sys

import websockets

RUNS, TOOLS = 3, 8  # each run: started, thinking, 8 tools opened and closed, completed = 19 events


async def read_until(ws, stop):
    """Frames until stop(frame) is true; returns them."""
    out = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        out.append(frame)
        if stop(frame):
            return out


async def main(base, token):
    seen = []  # (epoch, seq, kind) of every stream frame, in arrival order
    async with websockets.connect(f"{base}/?token={token}") as ws:
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        for _ in range(RUNS):
            await ws.send(json.dumps({"type": "start_run", "tools": TOOLS}))
        frames = await read_until(ws, lambda f: f["type"] == "event" and f["seq"] >= 5)
        seen += [(f["epoch"], f["seq"], f["event"]["type"]) for f in frames if f["type"] == "event"]
        ws.transport.abort()  # drop mid-run, no close frame
    epoch, last = seen[-1][0], seen[-1][1]
    total = RUNS * (TOOLS * 2 + 3)
    async with websockets.connect(f"{base}/?token={token}&since={last}&epoch={epoch}") as ws:
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        assert welcome["recovered"] is True, f"not recovered: {welcome}"
        assert (welcome["epoch"], welcome["seq"]) == (epoch, last), welcome
        frames = await read_until(ws, lambda f: f.get("seq") == total)
        for f in frames:
            if f["type"] == "gap":
                raise AssertionError(f"unexpected gap: {f}")
            if f["type"] == "event":
                seen.append((f["epoch"], f["seq"], f["event"]["type"]))
    seqs = [s for (_, s, _) in seen]
    assert {e for (e, _, _) in seen} == {epoch}, "more than one epoch"
    assert seqs == list(range(1, total + 1)), f"lost, duplicated or reordered: {seqs}"
    completed = sum(1 for (_, _, k) in seen if k == "agent_completed")
    assert completed == RUNS, f"{completed} runs completed, expected {RUNS}"
    print(f"third-party client: dropped after #{last}, resumed, {total} events exactly once in order")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    except AssertionError as e:
        print(f"third-party client: FAILED: {e}")
        sys.exit(1)
