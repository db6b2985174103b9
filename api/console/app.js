/*
 * vigil web console: progressive enhancement of the server-rendered pages.
 * Filters and search without reloading, live updates from the event stream
 * (GET /api/v1/stream), ages that keep counting, and the silence dialog.
 * Every value from the API is put into the page as text, never as HTML.
 */
"use strict";

(function () {
  const page = document.body.dataset.page;
  document.documentElement.classList.add("js");

  /* ---- helpers ---------------------------------------------------------- */

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c);
    }
    return e;
  }

  function age(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    if (s < 120) return s + "s";
    if (s < 600) return Math.floor(s / 60) + "m" + (s % 60) + "s";
    if (s < 3 * 3600) return Math.floor(s / 60) + "m";
    if (s < 48 * 3600) return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
    if (s < 8 * 86400) return Math.floor(s / 86400) + "d" + Math.floor((s % 86400) / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }

  function timeEl(iso) {
    if (!iso) return "";
    const ms = Date.parse(iso);
    return el("time", { datetime: iso, "data-ms": String(ms), title: iso, text: age(Date.now() - ms) });
  }

  function badgeClass(v) {
    return "badge v-" + String(v).replace(/[^a-z0-9]/g, "_");
  }

  function badge(v) {
    if (!v) return el("span", { class: "badge v-none", text: "-" });
    return el("span", { class: badgeClass(v), text: v });
  }

  function healthName(h) {
    return h ? h : "unknown";
  }

  function debounce(fn, ms) {
    let t = null;
    return function () {
      clearTimeout(t);
      t = setTimeout(fn, ms);
    };
  }

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
    return r.json();
  }

  function refreshAges() {
    const now = Date.now();
    for (const t of document.querySelectorAll("time[data-ms]")) {
      t.textContent = age(now - Number(t.dataset.ms));
    }
  }
  setInterval(refreshAges, 15000);

  /* ---- the event stream --------------------------------------------------- */

  const live = document.getElementById("live");
  const handlers = {};
  function connect() {
    if (!window.EventSource) return;
    const es = new EventSource("/api/v1/stream");
    es.onopen = () => {
      live.textContent = "live";
      live.className = "live on";
    };
    es.onerror = () => {
      live.textContent = "reconnecting…";
      live.className = "live off";
    };
    for (const type of ["transition", "incident", "reset"]) {
      es.addEventListener(type, (e) => {
        let data = {};
        try {
          data = JSON.parse(e.data);
        } catch (err) {
          return;
        }
        if (handlers[type]) handlers[type](data);
      });
    }
  }

  /* ---- Resources ------------------------------------------------------------ */

  function resourceRow(r) {
    const h = healthName(r.health);
    return el(
      "tr",
      { "data-id": r.id, class: "h-" + h },
      el("td", { "data-label": "NAME", class: "name" },
        el("a", { href: "/resources/" + encodeURIComponent(r.id), text: r.name })),
      el("td", { "data-label": "VERSION", text: r.version }),
      el("td", { "data-label": "TYPE", text: r.type }),
      el("td", { "data-label": "WORKSPACE", text: r.workspace }),
      el("td", { "data-label": "STATUS", class: "status" }, badge(r.status)),
      el("td", { "data-label": "RUNTIME", class: "runtime" }, badge(r.runtime)),
      el("td", { "data-label": "OWNER", text: r.owner }),
      el("td", { "data-label": "HEALTH", class: "health" }, badge(h)),
      el("td", { "data-label": "SINCE", class: "since" }, timeEl(r.since))
    );
  }

  function initResources() {
    const form = document.getElementById("filters");
    const tbody = document.querySelector("#resources tbody");
    const empty = document.getElementById("empty");
    const q = document.getElementById("q");
    let seq = 0;

    function params() {
      const p = new URLSearchParams();
      for (const [k, v] of new FormData(form)) {
        if (v) p.set(k, v);
      }
      return p;
    }

    function matches(r) {
      const p = params();
      if (p.get("type") && p.get("type") !== r.type) return false;
      if (p.get("workspace") && p.get("workspace") !== r.workspace) return false;
      if (p.get("health") && p.get("health") !== healthName(r.health)) return false;
      if (p.get("q") && !r.name.toLowerCase().includes(p.get("q").toLowerCase())) return false;
      return true;
    }

    function renderCounts(counts, p) {
      for (const a of document.querySelectorAll("#counts a[data-health]")) {
        const h = a.dataset.health;
        a.querySelector("b").textContent = String(counts[h] || 0);
        const lp = new URLSearchParams(p);
        if (p.get("health") === h) {
          lp.delete("health");
          a.setAttribute("aria-current", "true");
        } else {
          lp.set("health", h);
          a.removeAttribute("aria-current");
        }
        const s = lp.toString();
        a.setAttribute("href", "/" + (s ? "?" + s : ""));
      }
    }

    async function refresh() {
      const p = params();
      const mine = ++seq;
      const api = new URLSearchParams(p);
      api.set("limit", "500");
      let data;
      try {
        data = await getJSON("/api/v1/resources?" + api.toString());
      } catch (err) {
        live.textContent = "error: " + err.message;
        return;
      }
      if (mine !== seq) return; /* a newer query won */
      tbody.replaceChildren(...data.items.map(resourceRow));
      empty.hidden = data.items.length > 0;
      renderCounts(data.counts, p);
      const s = p.toString();
      history.replaceState(null, "", "/" + (s ? "?" + s : ""));
    }
    const refreshSoon = debounce(refresh, 150);
    const refreshLater = debounce(refresh, 1000);

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      refresh();
    });
    form.addEventListener("input", refreshSoon);
    form.addEventListener("change", refreshSoon);
    document.addEventListener("keydown", (e) => {
      if (e.key === "/" && document.activeElement !== q) {
        e.preventDefault();
        q.focus();
      }
    });

    handlers.transition = (t) => {
      const r = t.resource;
      if (!r) return;
      const row = tbody.querySelector('tr[data-id="' + CSS.escape(r.id) + '"]');
      if (row && matches(r)) {
        const fresh = resourceRow(r);
        fresh.classList.add("flash");
        row.replaceWith(fresh);
      }
      refreshLater(); /* counts, order, rows that start or stop matching */
    };
    handlers.reset = refresh;
  }

  /* ---- one Resource ------------------------------------------------------------ */

  function timelineItem(e) {
    const li = el("li", { class: e.kind === "transition" ? "t-transition" : "t-log" },
      el("time", { datetime: e.time || "", text: e.time || "-" }));
    if (e.kind === "transition") {
      li.append(" ", el("span", { class: "field", text: e.field }), " ", badge(e.from),
        " ", el("span", { "aria-label": "to", text: "→" }), " ", badge(e.to));
    } else {
      li.append(" ", el("span", { class: "field", text: "log" }));
    }
    for (const k of ["reason", "pod", "late", "type"]) {
      if (e.extra && e.extra[k]) li.append(" ", el("span", { class: "extra", text: k + "=" + e.extra[k] }));
    }
    if (e.message) li.append(" ", el("span", { class: "message", text: e.message }));
    return li;
  }

  function initResource() {
    const h1 = document.getElementById("resource");
    if (!h1) return;
    const id = h1.dataset.id;
    const base = "/api/v1/resources/" + encodeURIComponent(id);

    function card(name, value, since) {
      const c = document.getElementById("card-" + name);
      if (!c) return;
      const b = c.querySelector(".badge");
      b.replaceWith(badge(value));
      let p = c.querySelector("p");
      if (since) {
        if (!p) {
          p = el("p");
          c.append(p);
        }
        p.replaceChildren("since ", timeEl(since));
      } else if (p) {
        p.remove();
      }
    }

    async function reload() {
      let r, h;
      try {
        [r, h] = await Promise.all([getJSON(base), getJSON(base + "/history")]);
      } catch (err) {
        live.textContent = "error: " + err.message;
        return;
      }
      card("status", r.status, r.status_since);
      card("runtime", r.runtime, r.runtime_since);
      card("health", healthName(r.health), r.health_since);
      const ol = document.getElementById("timeline");
      ol.replaceChildren(...h.items.slice().reverse().map(timelineItem));
    }
    const reloadSoon = debounce(reload, 300);
    handlers.transition = (t) => {
      if (t.resource && t.resource.id === id) reloadSoon();
    };
    handlers.incident = (i) => {
      if (i.resource === id) setTimeout(() => location.reload(), 500);
    };
    handlers.reset = reloadSoon;
  }

  /* ---- Incidents ------------------------------------------------------------------ */

  function incidentRow(i, firing) {
    const end = i.ended_at ? Date.parse(i.ended_at) : Date.now();
    const tr = el("tr", { "data-id": i.id },
      el("td", { "data-label": "SEVERITY" }, badge(i.severity)),
      el("td", { "data-label": "MONITOR", text: i.monitor }),
      el("td", { "data-label": "RESOURCE" },
        el("a", { href: "/resources/" + encodeURIComponent(i.resource), text: i.resource })),
      el("td", { "data-label": "SUMMARY", text: i.summary }),
      el("td", { "data-label": "STARTED" }, timeEl(i.started_at)),
      el("td", { "data-label": "DURATION", text: age(end - Date.parse(i.started_at)) }));
    if (firing) {
      tr.append(el("td", { "data-label": "" },
        el("button", { type: "button", class: "silence", "data-monitor": i.monitor,
          "data-resource": i.resource, text: "Silence…" })));
    } else {
      tr.append(el("td", { "data-label": "STATUS" }, badge(i.status)));
    }
    return tr;
  }

  function initIncidents() {
    const dialog = document.getElementById("silence-dialog");
    const form = document.getElementById("silence-form");
    const what = document.getElementById("silence-what");
    const errorP = document.getElementById("silence-error");
    let token = "";
    let target = null;

    async function refresh() {
      let data;
      try {
        data = await getJSON("/api/v1/incidents?status=all");
      } catch (err) {
        live.textContent = "error: " + err.message;
        return;
      }
      const day = Date.now() - 24 * 3600 * 1000;
      const firing = data.items.filter((i) => i.status === "firing");
      const ended = data.items.filter((i) => i.status !== "firing" && i.ended_at && Date.parse(i.ended_at) >= day);
      document.querySelector("#firing tbody").replaceChildren(...firing.map((i) => incidentRow(i, true)));
      document.querySelector("#resolved tbody").replaceChildren(...ended.map((i) => incidentRow(i, false)));
      document.getElementById("firing-empty").hidden = firing.length > 0;
      document.getElementById("resolved-empty").hidden = ended.length > 0;
    }
    handlers.incident = debounce(refresh, 300);
    handlers.reset = refresh;

    document.addEventListener("click", (e) => {
      const b = e.target.closest("button.silence");
      if (!b || !dialog.showModal) return;
      target = { monitor: b.dataset.monitor, resource: b.dataset.resource };
      what.textContent = "Silence " + target.monitor + " on " + target.resource + ".";
      errorP.textContent = "";
      form.elements.token.value = token;
      dialog.showModal();
      (token ? form.elements.duration : form.elements.token).focus();
    });

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (e.submitter && e.submitter.value === "cancel") {
        dialog.close();
        return;
      }
      token = form.elements.token.value.trim();
      const body = {
        matchers: ["monitor=" + target.monitor, "resource=" + target.resource],
        duration: form.elements.duration.value,
        comment: form.elements.comment.value,
        created_by: "console",
      };
      let r;
      try {
        r = await fetch("/api/v1/silences", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
          body: JSON.stringify(body),
        });
      } catch (err) {
        errorP.textContent = err.message;
        return;
      }
      if (r.ok) {
        const s = await r.json();
        dialog.close();
        live.textContent = "silence " + s.id + " until " + s.ends_at;
        refresh();
        return;
      }
      if (r.status === 401 || r.status === 403) token = "";
      errorP.textContent = (await r.json().catch(() => ({}))).error || r.statusText;
    });
  }

  if (page === "resources") initResources();
  else if (page === "resource") initResource();
  else if (page === "incidents") initIncidents();
  connect();
})();
