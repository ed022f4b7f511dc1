// segfuncd console: progressive enhancement only; every page works without it.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  // Confirmations for forms that change state.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => { if (!window.confirm(form.dataset.confirm)) e.preventDefault(); });
  }

  // Send Test Event: picking a sample type swaps the event for that sample.
  const type = document.getElementById("test-type");
  const samples = document.getElementById("samples");
  const event = document.getElementById("test-event");
  if (type && samples && event) {
    const all = JSON.parse(samples.textContent);
    type.addEventListener("change", () => {
      if (all[type.value]) event.value = JSON.stringify(all[type.value], null, 2);
    });
  }
  const run = document.getElementById("run-test");
  const testForm = document.getElementById("test-form");
  if (run && testForm) testForm.addEventListener("submit", (e) => {
    if (!e.submitter || e.submitter === run) { run.disabled = true; run.textContent = "Running…"; }
  });

  // Live log: Server-Sent Events appended to the table, newest last.
  const table = document.getElementById("log");
  if (table && window.EventSource) {
    const body = table.tBodies[0];
    const state = document.getElementById("live-state");
    const empty = document.getElementById("log-empty");
    const source = new EventSource(table.dataset.stream);
    const maxRows = 1000;
    source.onopen = () => { state.dataset.state = "live"; state.textContent = "live"; };
    source.onerror = () => { state.dataset.state = "off"; state.textContent = "reconnecting…"; };
    source.onmessage = (msg) => {
      const ln = JSON.parse(msg.data);
      const tr = document.createElement("tr");
      tr.className = "fresh lv-" + ln.level;
      const cells = [ln.time, ln.level, ln.who, ln.message_id, ln.message];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        if (i === 3) {
          const c = document.createElement("code");
          c.textContent = text.length > 24 ? text.slice(0, 21) + "..." : text;
          c.title = text;
          td.appendChild(c);
        } else td.textContent = text;
        if (i === 0 || i === 2) td.className = "nowrap";
        if (i === 4) {
          td.className = "msg";
          if (ln.context) {
            const ctx = document.createElement("span");
            ctx.className = "ctx";
            ctx.textContent = " " + ln.context;
            td.appendChild(ctx);
          }
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
      if (empty) empty.remove();
      while (body.rows.length > maxRows) body.deleteRow(0);
      const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
      if (nearBottom) tr.scrollIntoView({ block: "end" });
    };
  }
});
