// Live progress of an elicitation job: polls the JSON endpoint every second, no page reload.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress-url]");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-progress-url");
  var bar = box.querySelector("progress");

  function field(name) { return box.querySelector('[data-field="' + name + '"]'); }
  function setText(name, value) { var el = field(name); if (el) el.textContent = String(value); }

  function showErrors(errors) {
    var holder = field("errors");
    if (!holder || !errors.length) return;
    holder.textContent = "";
    var title = document.createElement("h4");
    title.textContent = "First errors";
    var list = document.createElement("ol");
    list.className = "job-errors";
    errors.forEach(function (e) {
      var item = document.createElement("li");
      var kind = document.createElement("strong");
      kind.textContent = e.kind;
      item.appendChild(kind);
      item.appendChild(document.createTextNode(
        (e.example_id ? " · example " + e.example_id : "") + ": " + e.message));
      if (e.raw_excerpt) {
        var raw = document.createElement("pre");
        raw.className = "excerpt";
        raw.textContent = e.raw_excerpt;
        item.appendChild(raw);
      }
      list.appendChild(item);
    });
    holder.appendChild(title);
    holder.appendChild(list);
  }

  function update(p) {
    bar.max = p.total || 1;
    bar.value = p.total ? p.done : 1;
    bar.textContent = p.percent + "%";
    setText("done", p.done);
    setText("failed", p.failed);
    setText("total", p.total);
    setText("percent", p.percent);
    var status = field("status");
    if (status) { status.textContent = p.status; status.className = "badge status-" + p.status; }
    showErrors(p.errors);
    if (p.finished) {
      box.setAttribute("data-finished", "true");
      box.querySelectorAll("[data-hide-when-finished]").forEach(function (el) { el.hidden = true; });
    }
    return p.finished;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (p) { if (!update(p)) setTimeout(poll, 1000); })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
