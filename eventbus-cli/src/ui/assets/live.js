// The live page: follows /live/events (Server-Sent Events) and adds each
// event as a table row. Values go in with textContent, never as HTML.
"use strict";
(function () {
  const rows = document.getElementById("live-rows");
  const status = document.getElementById("status");
  const pause = document.getElementById("pause");
  if (!rows) return;
  const MAX_ROWS = 500;
  let paused = false;
  let held = [];
  // Events waiting for the next frame: at thousands a second, rows are
  // added once per frame, and only as many as the table keeps.
  let pending = [];
  let frame = 0;
  let received = 0;
  let skipped = 0;

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "-" : String(text);
    tr.appendChild(td);
    return td;
  }

  function row(ev) {
    const tr = document.createElement("tr");
    const seq = cell(tr, "");
    const link = document.createElement("a");
    link.href = "/events/" + encodeURIComponent(ev.seq);
    link.textContent = String(ev.seq);
    seq.appendChild(link);
    cell(tr, ev.time);
    cell(tr, ev.topic);
    cell(tr, ev.source);
    cell(tr, ev.correlationid);
    cell(tr, ev.data).className = "data";
    return tr;
  }

  function draw() {
    frame = 0;
    const batch = document.createDocumentFragment();
    for (let i = pending.length - 1; i >= 0; i -= 1) batch.appendChild(row(pending[i]));
    pending = [];
    rows.insertBefore(batch, rows.firstChild);
    while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild);
    report();
  }

  function show(ev) {
    pending.push(ev);
    if (pending.length > MAX_ROWS) pending.shift();
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function report() {
    let text = (paused ? "paused" : "following") + " · " + received + " received";
    if (held.length > 0) text += " · " + held.length + " held while paused";
    if (skipped > 0) text += " · skipped " + skipped + " (the browser fell behind)";
    status.textContent = text;
  }

  const source = new EventSource(rows.dataset.source);
  source.addEventListener("ready", function () { report(); });
  source.addEventListener("event", function (e) {
    const ev = JSON.parse(e.data);
    received += 1;
    if (paused) {
      held.push(ev);
      if (held.length > MAX_ROWS) held.shift();
      report();
    } else {
      show(ev);
    }
  });
  source.addEventListener("skipped", function (e) {
    skipped += Number(e.data) || 0;
    report();
  });
  source.onerror = function () { status.textContent = "disconnected; retrying…"; };

  pause.addEventListener("click", function () {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) { held.forEach(show); held = []; }
    report();
  });
})();
