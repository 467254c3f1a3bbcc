"""Two real server nodes over one real Redis, driven by a client nobody here wrote (Python's
`websockets`): tabs of one user on both nodes read one stream; a run started through node A
arrives exactly once, in order, on both; node A is killed mid-run and its tab resumes on node B
with `recovered: true`, nothing missing and nothing doubled; a run through node B then reaches
both tabs.

Usage: two_nodes_check.py WS_A WS_B TOKEN PID_OF_A
Exit 0 when every check holds; 1 with a message otherwise.
"""
import asyncio
import json
import os
import signal
import sys

import websockets


async def frame(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))


async def welcome(ws):
    w = await frame(ws)
    assert w["type"] == "welcome", w
    return w


async def stream(ws, n):
    """The next n stream frames (events, texts, gaps)."""
    out = []
    while len(out) < n:
        f = await frame(ws)
        if "seq" in f:
            out.append(f)
    return out


async def until_quiet(ws, quiet=1.5):
    """Stream frames until nothing arrives for `quiet` seconds."""
    out = []
    while True:
        try:
            f = await frame(ws, timeout=quiet)
        except (asyncio.TimeoutError, websockets.ConnectionClosed):
            return out
        if "seq" in f:
            out.append(f)


def positions(frames):
    return [(f["epoch"], f["seq"]) for f in frames]


async def main(ws_a, ws_b, token, pid_a):
    tab1 = await websockets.connect(f"{ws_a}/?token={token}")
    tab2 = await websockets.connect(f"{ws_b}/?token={token}")
    await welcome(tab1)
    await welcome(tab2)

    # A run through node A (3 tools: 9 events) reaches both tabs, once each, in order.
    await tab1.send(json.dumps({"type": "start_run", "tools": 3}))
    one, two = await stream(tab1, 9), await stream(tab2, 9)
    assert positions(one) == positions(two), (positions(one), positions(two))
    assert [f["seq"] for f in one] == list(range(1, 10)), positions(one)
    assert all(f["type"] == "event" for f in one), one
    assert one[0]["event"]["run_id"].endswith("a-run-1"), one[0]
    epoch = one[0]["epoch"]

    # A second run through node A (19 events, 5 ms apart). Its tab reads 2 of them, then
    # stops reading while node A goes on appending; 40 ms later node A is killed mid-run.
    await tab1.send(json.dumps({"type": "start_run", "tools": 8}))
    before = await stream(tab1, 2)
    await asyncio.sleep(0.04)
    os.kill(pid_a, signal.SIGKILL)
    on_b = await until_quiet(tab2)
    assert positions(on_b)[:2] == positions(before), (positions(on_b), positions(before))
    assert 2 < len(on_b) < 19, f"node A was to die mid-run: {len(on_b)} events stored"
    stored = positions(on_b)
    assert [s for (_, s) in stored] == list(range(10, 10 + len(stored))), stored

    # Node A's tab resumes on node B from its last position: everything after it, once.
    last = before[-1]
    tab1b = await websockets.connect(
        f"{ws_b}/?token={token}&since={last['seq']}&epoch={last['epoch']}")
    w = await welcome(tab1b)
    assert w["recovered"] is True, w
    assert (w["epoch"], w["seq"]) == (last["epoch"], last["seq"]), w
    rest = await stream(tab1b, len(stored) - 2)
    assert positions(before + rest) == stored, (positions(before + rest), stored)
    assert not any(f["type"] == "gap" for f in rest), rest

    # A run through node B reaches both tabs, after everything before it.
    await tab1b.send(json.dumps({"type": "start_run", "tools": 1}))
    x, y = await stream(tab1b, 5), await stream(tab2, 5)
    assert positions(x) == positions(y), (positions(x), positions(y))
    head = stored[-1][1]
    assert [f["seq"] for f in x] == list(range(head + 1, head + 6)), positions(x)
    assert {f["epoch"] for f in x} == {epoch}
    assert x[0]["event"]["run_id"].endswith("b-run-1"), x[0]
    await tab1b.close()
    await tab2.close()
    print(f"two nodes over Redis: 9 events on both tabs; node A killed after #{last['seq']} "
          f"({len(stored)} events of its second run stored); resumed on node B with "
          f"recovered: true and {len(rest)} missed events once; a run through B on both tabs "
          f"at #{head + 1}..#{head + 5}")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    except AssertionError as e:
        print(f"two nodes over Redis: FAILED: {e}")
        sys.exit(1)
