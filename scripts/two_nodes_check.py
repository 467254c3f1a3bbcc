"""Two real server nodes over one real Redis, driven by a client nobody here wrote (Python's
`websockets`): tabs of one user on both nodes read one stream; a run started through node A
arrives exactly once, in order, on both; node A is killed mid-run and its tab resumes on node B
with `recovered: true`, nothing missing and nothing doubled; a run through node B then reaches
both tabs. Then Redis is flushed (`FLUSHALL`: every stream lost) under node B's tabs: a run
through node B lands in a new epoch, node B closes its tabs rather than move them on silently,
and a tab that resumes from its last position is told `recovered: false` and an `epoch_changed`
gap before the new run, with nothing read twice. Last, Redis stalls (`DEBUG SLEEP`) while a tab
connects to node B, whose connect timeout is 1 s: the tab is told `connect_timeout` and closed
with 1013, and once Redis is back the slot that dropped connect took in the store has been given
back, and a new tab is welcomed.

Usage: two_nodes_check.py WS_A WS_B TOKEN PID_OF_A REDIS_PORT
Exit 0 when every check holds; 1 with a message otherwise.
"""
import asyncio
import json
import os
import signal
import socket
import sys
import time

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


def resp(*args):
    """A command in Redis's wire protocol."""
    return (f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)).encode()


def redis_command(port, *args):
    """One command to the Redis on `port`; its first reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(resp(*args))
        return s.recv(1024).split(b"\r\n")[0].decode()


async def until_closed(ws, timeout=10):
    """Every frame until the server closes the socket (fails if it does not in time)."""
    out = []
    while True:
        try:
            out.append(await frame(ws, timeout=timeout))
        except websockets.ConnectionClosed:
            return out


def positions(frames):
    return [(f["epoch"], f["seq"]) for f in frames]


async def main(ws_a, ws_b, token, pid_a, redis_port):
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
    # Redis loses every stream. A run through node B is stored in a new epoch; node B's tabs
    # read the old one, so node B closes them (1012) instead of moving them on silently.
    assert redis_command(redis_port, "FLUSHALL") == "+OK"
    read_to = x[-1]
    await tab1b.send(json.dumps({"type": "start_run", "tools": 1}))
    for tab in (tab1b, tab2):
        tail = await until_closed(tab)
        assert all(f.get("epoch", epoch) == epoch for f in tail if "seq" in f), tail
        assert tab.close_code == 1012, tab.close_code
    # The client resumes from its last position: told the loss first, then the new epoch once.
    tab3 = await websockets.connect(
        f"{ws_b}/?token={token}&since={read_to['seq']}&epoch={read_to['epoch']}")
    w = await welcome(tab3)
    assert w["recovered"] is False, w
    gap = await frame(tab3)
    while gap["type"] not in ("gap", "event", "text"):
        gap = await frame(tab3)
    assert gap["type"] == "gap" and gap["reason"] == "epoch_changed", gap
    assert gap["epoch"] != epoch, gap
    after = await until_quiet(tab3)
    seqs = [f["seq"] for f in after]
    assert seqs == list(range(gap["to"] + 1, gap["to"] + 1 + len(seqs))), (gap, seqs)
    assert {f["epoch"] for f in after} <= {gap["epoch"]}, after
    assert len(after) == 5, f"the run after the flush: {len(after)} events"
    await tab3.close()

    # Redis stalls for 1.5 s while a tab connects to node B (connect timeout 1 s): the tab is
    # refused with connect_timeout and 1013 at the deadline. The store still takes the slot
    # the dropped connect asked for once it wakes; node B gives it back.
    await asyncio.sleep(0.5)  # tab3's close reaches the store
    slots = "wsreg:{two-node-tester}:conns"
    held = redis_command(redis_port, "ZCARD", slots)
    with socket.create_connection(("127.0.0.1", redis_port), timeout=5) as stall:
        stall.sendall(resp("DEBUG", "SLEEP", "1.5"))
        await asyncio.sleep(0.1)
        asked = time.monotonic()
        tab4 = await websockets.connect(f"{ws_b}/?token={token}")
        refused = await frame(tab4)
        assert refused["type"] == "error" and refused["code"] == "connect_timeout", refused
        await until_closed(tab4)
        assert tab4.close_code == 1013, tab4.close_code
        waited = time.monotonic() - asked
        assert 0.9 < waited < 1.5, f"refused after {waited:.2f} s"
        assert stall.recv(64).startswith(b"+OK")  # Redis is back
    await asyncio.sleep(0.5)
    after_stall = redis_command(redis_port, "ZCARD", slots)
    assert after_stall == held, f"slots held: {held} before the stall, {after_stall} after it"
    tab5 = await websockets.connect(f"{ws_b}/?token={token}")
    await welcome(tab5)
    # The slots counted are the ones this user's tabs take: one more while tab5 is open.
    now_held = redis_command(redis_port, "ZCARD", slots)
    assert int(now_held[1:]) == int(held[1:]) + 1, (held, now_held)
    await tab5.close()
    print(f"two nodes over Redis: 9 events on both tabs; node A killed after #{last['seq']} "
          f"({len(stored)} events of its second run stored); resumed on node B with "
          f"recovered: true and {len(rest)} missed events once; a run through B on both tabs "
          f"at #{head + 1}..#{head + 5}; after FLUSHALL both tabs closed (1012), and the resume "
          f"was told epoch_changed, then read the new run's 5 events once; a connect under a "
          f"stalled Redis was refused connect_timeout after {waited:.2f} s and its slot given "
          f"back ({held[1:]} held before and after)")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]),
                         int(sys.argv[5])))
    except AssertionError as e:
        print(f"two nodes over Redis: FAILED: {e}")
        sys.exit(1)
