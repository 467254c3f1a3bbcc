// The official socket.io client against the peers bench's socketioxide server; see
// scripts/socketio-check. Arguments: the bench binary, a token for the user.
const { spawn } = require("child_process");
const readline = require("readline");
const { io } = require("socket.io-client");

const [exe, token] = process.argv.slice(2);
const server = spawn(exe, [], {
  env: { ...process.env, WSREG_PEERS_SERVE: "socketioxide 300 10" },
  stdio: ["pipe", "pipe", "inherit"],
});
const fail = (why) => {
  console.error(`socket.io client check FAILED: ${why}`);
  server.kill();
  process.exit(1);
};
setTimeout(() => fail("timed out"), 30000).unref();

readline.createInterface({ input: server.stdout }).once("line", (addr) => {
  const socket = io(`http://${addr}`, {
    transports: ["websocket"],
    auth: { token },
    reconnectionDelay: 1000,
    reconnectionDelayMax: 1000,
    randomizationFactor: 0,
  });
  const frames = [];
  const connects = [];
  socket.on("connect", () => {
    connects.push({ recovered: socket.recovered });
    if (connects.length === 1) socket.emit("start_run");
  });
  socket.on("connect_error", (e) => fail(`connect_error: ${e.message}`));
  socket.on("msg", (frame) => {
    frames.push({ connect: connects.length, ...frame });
    const events = frames.filter((f) => f.type === "event");
    if (connects.length === 1 && events.length === 7) {
      // The first run read whole: start a second and drop the transport after its first event.
      socket.emit("start_run");
    } else if (connects.length === 1 && events.length === 8) {
      socket.io.engine.close();
    } else if (frame.type === "event" && frame.event.type === "agent_completed" && connects.length === 2) {
      finish();
    }
  });
  const finish = () => {
    const first = frames.filter((f) => f.connect === 1);
    const seqs = frames.filter((f) => f.type === "event").map((f) => f.seq);
    if (first[0].type !== "welcome") fail(`the first frame is not a welcome: ${JSON.stringify(first[0])}`);
    const firstRun = seqs.slice(0, 7).join(",");
    if (firstRun !== "1,2,3,4,5,6,7") fail(`the first run's positions: ${firstRun}`);
    // socket.io-client sets `recovered` from the session id a recovering server hands out; a
    // server without recovery hands out none, so it stays falsy.
    if (connects[1].recovered) fail(`the reconnect says recovered: ${connects[1].recovered}`);
    const missed = [];
    for (let s = 8; s <= 14; s++) if (!seqs.includes(s)) missed.push(s);
    if (missed.length === 0) fail("nothing was missed while away: the transport was not dropped mid-run");
    const second = frames.filter((f) => f.connect === 2);
    if (second.length === 0 || second[0].type !== "welcome") fail("no welcome after the reconnect");
    console.log(
      `socket.io client check: socket.io-client read the first run at positions ${firstRun}; ` +
        `its transport dropped mid-run, it reconnected not recovered (no session id offered) and never got positions ` +
        `${missed.join(",")} (socketioxide keeps nothing for a client away)`,
    );
    socket.close();
    server.kill();
    process.exit(0);
  };
});
