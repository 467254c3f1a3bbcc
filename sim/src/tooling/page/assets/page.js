"use strict";
// Draws the run held in #data: lanes, steps, the ledger and the step table, filtered by user.
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const LANE_H = 28;
  const AXIS_H = 28;
  const STEP_W = 16;
  const LONG_IDLE_US = 50000;
  const CLASS_NAMES = {
    act: "client action", recv: "received", lost: "lost unread in a crash", gap: "gap marker",
    refused: "refused", core: "backend's own account", world: "phase or fault",
  };
  // Each step: [n, t_us, lane, class, text, related, who, conn, mgr].
  const steps = data.steps.map((s) => ({
    n: s[0], t: s[1], lane: s[2], cls: s[3], text: s[4], rel: s[5], who: s[6], conn: s[7], mgr: s[8],
  }));
  const byN = new Map(steps.map((s, i) => [s.n, i]));
  const shown = new Set(data.users.map((_, i) => i));
  let selected = null;

  const el = (tag, attrs, text) => {
    const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const seconds = (us) => (us / 1e6).toFixed(6);
  const laneShown = (l) => {
    const lane = data.lanes[l];
    return lane.kind === "world" || lane.users.length === 0 || lane.users.some((u) => shown.has(u));
  };
  const userShown = (name) => {
    const u = data.users.indexOf(name);
    return u < 0 || shown.has(u);
  };

  // The mark a step is drawn with, centred on (0, 0).
  function mark(cls) {
    switch (cls) {
      case "gap": return el("svg:rect", { class: "m", x: -5, y: -5, width: 10, height: 10, transform: "rotate(45)" });
      case "refused": return el("svg:path", { class: "m", d: "M-5,-5L5,5M5,-5L-5,5" });
      case "core": return el("svg:rect", { class: "m", x: -4, y: -4, width: 8, height: 8 });
      case "world": return el("svg:path", { class: "m", d: "M0,-6L6,5L-6,5Z" });
      default: return el("svg:circle", { class: "m", r: 5 });
    }
  }

  function legend() {
    const box = document.getElementById("legend");
    for (const [cls, name] of Object.entries(CLASS_NAMES)) {
      const item = el("span");
      const svg = el("svg:svg", { width: 14, height: 14, class: "step " + cls });
      const g = el("svg:g", { transform: "translate(7,7)" });
      g.appendChild(mark(cls));
      svg.appendChild(g);
      item.appendChild(svg);
      item.appendChild(document.createTextNode(name));
      box.appendChild(item);
    }
  }

  function filterControls() {
    const box = document.getElementById("users");
    data.users.forEach((name, i) => {
      const label = el("label");
      const input = el("input", { type: "checkbox", id: "user-" + i, "data-user": i });
      input.checked = true;
      input.addEventListener("change", () => {
        if (input.checked) shown.add(i); else shown.delete(i);
        draw();
      });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + name));
      box.appendChild(label);
    });
    const set = (pick) => {
      data.users.forEach((_, i) => {
        const on = pick(i);
        document.getElementById("user-" + i).checked = on;
        if (on) shown.add(i); else shown.delete(i);
      });
      draw();
    };
    document.getElementById("users-all").addEventListener("click", () => set(() => true));
    document.getElementById("users-none").addEventListener("click", () => set(() => false));
    const involved = document.getElementById("users-involved");
    if (data.involved.length === 0) involved.disabled = true;
    involved.addEventListener("click", () => set((i) => data.involved.includes(i)));
  }

  function visibleSteps() {
    return steps.filter((s) => laneShown(s.lane));
  }

  // Virtual time to x: every step gets its own column; idle time adds a little room, and a
  // stretch longer than LONG_IDLE_US is shortened and marked with how long it was.
  function columns(visible) {
    const xs = [];
    const breaks = [];
    let x = 12;
    let last = null;
    for (const s of visible) {
      if (last !== null) {
        const dt = s.t - last;
        x += STEP_W + (dt > 0 ? Math.min(40, 4 + 6 * Math.log2(1 + dt / 1000)) : 0);
        if (dt > LONG_IDLE_US) breaks.push({ x: x - 14, dt });
      }
      xs.push(x);
      last = s.t;
    }
    return { xs, breaks, width: x + 120 };
  }

  function draw() {
    const visible = visibleSteps();
    const laneRows = [];
    data.lanes.forEach((lane, l) => { if (laneShown(l)) laneRows.push(l); });
    const row = new Map(laneRows.map((l, i) => [l, i]));
    const labels = document.getElementById("lane-labels");
    labels.replaceChildren(el("div", { class: "lane-label axis" }, "virtual time (s)"));
    for (const l of laneRows) {
      const lane = data.lanes[l];
      labels.appendChild(el("div", { class: "lane-label kind-" + lane.kind, title: lane.label, "data-lane": l }, lane.label));
    }
    const { xs, breaks, width } = columns(visible);
    const height = AXIS_H + laneRows.length * LANE_H;
    const svg = el("svg:svg", { width, height, role: "img", "aria-label": "timeline" });
    laneRows.forEach((l, i) => {
      svg.appendChild(el("svg:rect", { class: "lane-bg" + (i % 2 ? " odd" : ""), x: 0, y: AXIS_H + i * LANE_H, width, height: LANE_H }));
    });
    let nextTick = 0;
    let lastTick = -1;
    visible.forEach((s, i) => {
      if (xs[i] >= nextTick && s.t !== lastTick) {
        lastTick = s.t;
        svg.appendChild(el("svg:line", { class: "tick-line", x1: xs[i], x2: xs[i], y1: AXIS_H - 6, y2: height }));
        svg.appendChild(el("svg:text", { class: "tick", x: xs[i] + 2, y: 12 }, seconds(s.t)));
        nextTick = xs[i] + 110;
      }
    });
    for (const b of breaks) {
      svg.appendChild(el("svg:line", { class: "break", x1: b.x, x2: b.x, y1: 14, y2: height }));
      svg.appendChild(el("svg:text", { class: "break-label", x: b.x + 2, y: 24 }, "+" + (b.dt / 1e6).toFixed(3) + " s"));
    }
    const violationAt = data.violation === null ? -1 : visible.findIndex((s) => s.n === data.violation);
    if (violationAt >= 0) {
      svg.appendChild(el("svg:rect", { class: "violation-band", x: xs[violationAt] - 9, y: AXIS_H, width: 18, height: height - AXIS_H }));
    }
    visible.forEach((s, i) => {
      const y = AXIS_H + row.get(s.lane) * LANE_H + LANE_H / 2;
      if (s.cls === "world") {
        svg.appendChild(el("svg:line", { class: "world-line", x1: xs[i], x2: xs[i], y1: AXIS_H, y2: height }));
      }
      const g = el("svg:g", { class: "step " + s.cls, transform: `translate(${xs[i]},${y})`, "data-step": s.n, id: "step-" + s.n });
      g.appendChild(el("svg:title", {}, `step ${s.n} at ${seconds(s.t)} s: ${s.text}`));
      g.appendChild(el("svg:rect", { class: "hit", x: -8, y: -12, width: 16, height: 24 }));
      g.appendChild(mark(s.cls));
      if (s.n === data.violation) {
        g.classList.add("violation");
        g.appendChild(el("svg:circle", { class: "violation-ring", r: 10 }));
        g.appendChild(el("svg:text", { class: "violation-label", x: 13, y: 4 }, "violation"));
      }
      g.addEventListener("click", () => select(s.n, false));
      svg.appendChild(g);
    });
    const canvas = document.getElementById("canvas");
    canvas.replaceChildren(svg);
    canvas.dataset.columns = JSON.stringify(visible.map((s, i) => [s.n, xs[i]]));
    drawLedger();
    drawTable(visible);
    if (selected !== null) highlight();
  }

  function stepLink(n, text) {
    const inside = byN.has(n);
    const a = el("a", { href: "#", class: "step-link" + (inside ? "" : " outside"), "data-step": n,
      title: inside ? "show step " + n : "step " + n + " is outside the steps this page holds" }, text);
    a.addEventListener("click", (e) => { e.preventDefault(); if (inside) select(n, true); });
    return a;
  }

  function drawLedger() {
    const box = document.getElementById("ledger");
    if (data.ledger.length === 0) {
      box.replaceChildren(el("p", { class: "hint" }, "No tab connected in this run."));
      return;
    }
    const cols = [
      ["tab", null], ["key", null], ["start", null], ["read", "read"], ["gap markers", "gaps"],
      ["skipped silently", "silent"], ["read twice", "duplicates"], ["out of order", "disorder"],
      ["someone else's", "foreign"], ["lost in crash", null], ["end", null],
    ];
    const problems = new Set(["silent", "duplicates", "disorder", "foreign"]);
    const table = el("table");
    const head = el("tr");
    for (const [name] of cols) head.appendChild(el("th", {}, name));
    table.appendChild(el("thead")).appendChild(head);
    const body = table.appendChild(el("tbody"));
    for (const t of data.ledger) {
      if (!userShown(t.user)) continue;
      const tr = el("tr", { "data-user": t.user });
      tr.appendChild(el("td", {}, `${t.user} c${t.conn}`));
      tr.appendChild(el("td", {}, t.key));
      const start = el("td");
      start.appendChild(stepLink(t.start.step, t.start.text));
      tr.appendChild(start);
      for (const [, field] of cols.slice(3, 9)) {
        const entries = t[field];
        const td = el("td", { class: entries.length === 0 ? "none" : problems.has(field) ? "bad" : "" });
        if (entries.length === 0) td.textContent = "none";
        const ul = el("ul");
        for (const e of entries) ul.appendChild(el("li")).appendChild(stepLink(e.step, e.text));
        if (entries.length) td.appendChild(ul);
        tr.appendChild(td);
      }
      tr.appendChild(el("td", { class: t.lost_in_crash ? "" : "none" }, String(t.lost_in_crash)));
      const end = el("td");
      end.appendChild(stepLink(t.end.step, t.end.text));
      tr.appendChild(end);
      body.appendChild(tr);
    }
    const parts = [table];
    const senders = data.senders.filter(([user]) => userShown(user));
    if (senders.length) {
      const ul = el("ul", { class: "senders" });
      for (const [user, e] of senders) {
        const li = ul.appendChild(el("li", { "data-user": user, class: "bad" }));
        li.appendChild(stepLink(e.step, e.text));
      }
      parts.push(el("p", {}, "Findings about what senders were told:"), ul);
    }
    box.replaceChildren(...parts);
  }

  function drawTable(visible) {
    const body = document.querySelector("#steps tbody");
    body.replaceChildren();
    for (const s of visible) {
      const tr = el("tr", { "data-step": s.n, class: s.n === data.violation ? "violation" : "" });
      for (const v of [s.n, seconds(s.t), data.lanes[s.lane].label, s.text]) tr.appendChild(el("td", {}, String(v)));
      tr.addEventListener("click", () => select(s.n, true));
      body.appendChild(tr);
    }
  }

  function highlight() {
    document.querySelectorAll(".step.rel").forEach((g) => g.classList.remove("rel"));
    document.querySelectorAll("#steps tr.selected").forEach((r) => r.classList.remove("selected"));
    document.querySelectorAll(".sel-line").forEach((l) => l.remove());
    const s = steps[byN.get(selected)];
    if (s.rel >= 0) {
      for (const o of steps) if (o.rel === s.rel) document.getElementById("step-" + o.n)?.classList.add("rel");
    }
    document.querySelectorAll(".rel-path").forEach((p) => p.remove());
    const g = document.querySelector(`.step[data-step="${selected}"]`);
    if (g && s.rel >= 0) {
      // The message's way through the lanes: emit or send, acceptance, deliveries, receipts.
      const points = steps.filter((o) => o.rel === s.rel)
        .map((o) => document.getElementById("step-" + o.n))
        .filter((m) => m !== null)
        .map((m) => { const t = m.transform.baseVal.consolidate().matrix; return `${t.e},${t.f}`; });
      if (points.length > 1) {
        g.ownerSVGElement.insertBefore(el("svg:polyline", { class: "rel-path", points: points.join(" ") }), g.ownerSVGElement.querySelector(".step"));
      }
    }
    if (g) {
      g.classList.add("rel");
      const svg = g.ownerSVGElement;
      const x = g.transform.baseVal.consolidate().matrix.e;
      svg.insertBefore(el("svg:line", { class: "sel-line", x1: x, x2: x, y1: AXIS_H, y2: svg.getAttribute("height") }), svg.querySelector(".step"));
    }
    document.querySelector(`#steps tr[data-step="${selected}"]`)?.classList.add("selected");
  }

  function details(s) {
    const box = document.getElementById("details");
    box.classList.toggle("violation", s.n === data.violation);
    const lane = data.lanes[s.lane];
    const facts = [`step ${s.n}`, `t = ${seconds(s.t)} s`, `lane: ${lane.label}`, `names: ${s.who}`];
    if (s.conn !== null) facts.push("connection c" + s.conn);
    if (s.mgr !== null) facts.push("manager m" + s.mgr);
    facts.push(CLASS_NAMES[s.cls]);
    const parts = [el("div", {}, facts.join(" · ")), el("div", { class: "text" }, s.text)];
    if (s.n === data.violation) {
      const story = document.querySelector("#verdict .story");
      parts.push(el("div", { class: "violation-note" }, "This is the violating step. " + (story ? story.textContent : "")));
    }
    if (s.rel >= 0) {
      const rel = el("div", {}, `Steps about ${data.messages[s.rel]}: `);
      for (const o of steps) {
        if (o.rel === s.rel && o.n !== s.n) {
          rel.appendChild(stepLink(o.n, "#" + o.n));
          rel.appendChild(document.createTextNode(" "));
        }
      }
      parts.push(rel);
    }
    box.replaceChildren(...parts);
  }

  // Selects step n: details, highlights, and scrolls it into view (the page too if asked).
  function select(n, scrollPage) {
    let s = steps[byN.get(n)];
    if (!s) return;
    if (!laneShown(s.lane)) {
      data.lanes[s.lane].users.forEach((u) => { shown.add(u); document.getElementById("user-" + u).checked = true; });
      draw();
    }
    selected = n;
    details(s);
    highlight();
    const g = document.querySelector(`.step[data-step="${n}"]`);
    const canvas = document.getElementById("canvas");
    if (g) {
      const x = g.transform.baseVal.consolidate().matrix.e;
      if (x < canvas.scrollLeft + 40 || x > canvas.scrollLeft + canvas.clientWidth - 120) {
        canvas.scrollLeft = Math.max(0, x - canvas.clientWidth / 2);
      }
    }
    if (scrollPage) document.getElementById("timeline-section").scrollIntoView({ block: "start" });
  }

  function keys() {
    document.getElementById("timeline").addEventListener("keydown", (e) => {
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      const visible = visibleSteps();
      if (visible.length === 0) return;
      let i = visible.findIndex((s) => s.n === selected);
      i = i < 0 ? 0 : Math.max(0, Math.min(visible.length - 1, i + (e.key === "ArrowRight" ? 1 : -1)));
      select(visible[i].n, false);
      e.preventDefault();
    });
  }

  legend();
  filterControls();
  keys();
  draw();
  const go = document.getElementById("goto-violation");
  if (go) go.addEventListener("click", (e) => { e.preventDefault(); select(data.violation, true); });
  if (data.violation !== null && byN.has(data.violation)) select(data.violation, false);
  document.body.dataset.ready = "true";
})();
