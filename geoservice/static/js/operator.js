/* The operators' page: sign in with login name and password (a session cookie; writes carry its CSRF token) or a
   token, list my sites, edit hours with a live preview, closures, history,
   couriers' reports. No framework, no build step, no CDN; an ES module. Every UI string is in operator-i18n.js
   (zh and en); the labels of data (amenities, weekdays) come from GET /api/v1/vocabulary; the helpers from
   common.js, shared with the couriers' page. */
import { $, el, makeT, initialLang, dataLang, storageGet, storageSet, fetchJSON, loadVocabulary, label,
  weekdayLabel } from "./common.js";
import { STR } from "./operator-i18n.js";

var FIELDS = ["opening_hours", "alert_hours", "status", "name_zh", "name_en", "phone", "notes", "amenities"];

// The token lives in this tab only (sessionStorage), as the sign-in text promises.
function store(k, v) { storageSet("session", k, v); }
function recall(k) { return storageGet("session", k); }
var S = {
  lang: initialLang(recall("gs.op.lang")),
  token: recall("gs.op.token"), csrf: null, me: null, sites: [], total: 0, vocab: null, site: null, etag: null
};
window.operatorPage = S; // for tests and debugging (never holds anything the page did not show)

var t = makeT(STR, function () { return S.lang; });
var PREVIEWS = []; // the hours previews (regular, alert), made in init()
function msg(node, kind, key, detail) {
  node.hidden = false;
  node.dataset.kind = kind;
  node.dataset.msg = key;
  node.textContent = t(key) + (detail ? " " + detail : "");
}

/* ---------- API ---------- */
// Every answer, error or not, as {status, ok, body, etag, error}; only a failed connection rejects.
function api(method, path, body, extra) {
  var headers = { Accept: "application/json, application/geo+json, application/problem+json" };
  if (S.token) headers.Authorization = "Bearer " + S.token;
  // A session (HttpOnly cookie, sent by the browser) needs its CSRF token on every change.
  else if (S.csrf && method !== "GET") headers["X-CSRF-Token"] = S.csrf;
  Object.keys(extra || {}).forEach(function (k) { headers[k] = extra[k]; });
  return fetchJSON(path, { method: method, headers: headers, json: body, cache: "no-store", full: true }).then(function (r) {
    return { status: r.status, ok: true, body: r.body, etag: r.etag, error: null };
  }, function (e) {
    if (e.status === undefined) throw e;
    return { status: e.status, ok: false, body: e.body, etag: null, error: e };
  });
}
function problemText(res) {
  return (res.error && res.error.detail) || ("HTTP " + res.status);
}

/* ---------- language ---------- */
function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
  document.title = t("title");
  var b = $("lang");
  b.textContent = t("langButton");
  b.setAttribute("lang", S.lang === "zh" ? "en" : "zh");
  document.querySelectorAll(".msg[data-msg]").forEach(function (n) {
    if (!n.hidden && n.dataset.msg) n.textContent = t(n.dataset.msg) + (n.dataset.detail ? " " + n.dataset.detail : "");
  });
  if (S.me) { renderMe(); renderSites(); renderReports(S.reports || []); }
  if (S.site) { renderSite(); renderAmenities(currentAmenities()); renderHistory(S.history || []); renderAlertChoices(alertHoursValue()); PREVIEWS.forEach(function (p) { p.rerender(); }); }
}

/* ---------- sign in ---------- */
function signIn(token) {
  S.token = token; S.csrf = null;
  return enter($("signin-msg"), function () { S.token = null; store("gs.op.token", null); msg($("signin-msg"), "bad", "badToken"); })
    .then(function (ok) { if (ok) store("gs.op.token", token); });
}
// Who am I, then the lists; onUnauthorized when the credentials are refused. Resolves to whether it worked.
function enter(msgNode, onUnauthorized) {
  return api("GET", "/api/v1/operator/me").then(function (res) {
    if (res.status === 401) { onUnauthorized(); return false; }
    if (!res.ok) { msg(msgNode, "bad", "failed", problemText(res)); return false; }
    S.me = res.body;
    $("signin").hidden = true;
    $("signout").hidden = false;
    $("mine").hidden = false;
    $("reports").hidden = false;
    $("signin-msg").hidden = true; $("password-msg").hidden = true;
    $("password").value = "";
    renderMe();
    return Promise.all([loadVocab(), loadSites(0), loadReports()]).then(function () {
      document.body.dataset.state = "list";
      return true;
    });
  });
}
// Login name and password: the answer sets the session cookie (HttpOnly) and gives the CSRF token for changes.
function signInWithPassword(login, password) {
  var m = $("password-msg");
  return api("POST", "/api/v1/session", { login: login, password: password }).then(function (res) {
    $("password").value = "";
    if (res.status === 401) { msg(m, "bad", "badPassword"); return; }
    if (res.status === 429) { m.dataset.detail = (res.error && res.error.retryAfter) || ""; msg(m, "bad", "throttled", m.dataset.detail); return; }
    if (res.status === 423) { msg(m, "bad", "locked"); return; }
    if (!res.ok) { msg(m, "bad", "failed", problemText(res)); return; }
    S.token = null; store("gs.op.token", null);
    S.csrf = res.body.csrf_token;
    return enter(m, function () { S.csrf = null; msg(m, "bad", "sessionEnded"); });
  });
}
function signOut() {
  var ending = S.csrf ? api("DELETE", "/api/v1/session").catch(function () { /* offline: the cookie expires */ })
    : Promise.resolve();
  S.token = null; S.csrf = null; S.me = null; S.site = null; S.sites = [];
  store("gs.op.token", null);
  $("token").value = ""; $("password").value = "";
  $("signin").hidden = false; $("signout").hidden = true; $("mine").hidden = true; $("editor").hidden = true;
  $("reports").hidden = true;
  return ending.then(function () { document.body.dataset.state = "signed-out"; });
}
// A page opened while a session is live (a reload) carries on with it.
function resume() {
  return api("GET", "/api/v1/session").then(function (res) {
    if (res.ok && res.body && res.body.via === "session") {
      S.csrf = res.body.csrf_token;
      return enter($("password-msg"), function () { S.csrf = null; document.body.dataset.state = "signed-out"; });
    }
    document.body.dataset.state = "signed-out";
  }, function () { document.body.dataset.state = "signed-out"; });
}
function renderMe() {
  $("whoami").textContent = t("whoami", { name: S.me.name, role: t("role_" + S.me.role), n: S.me.sites });
}
function loadVocab() {
  if (S.vocab) return Promise.resolve();
  return loadVocabulary().then(function (v) { S.vocab = v; }, function () { /* labels fall back to codes */ });
}

/* ---------- my sites ---------- */
function loadSites(offset) {
  return api("GET", "/api/v1/operator/sites?limit=50&offset=" + offset).then(function (res) {
    if (!res.ok) return;
    S.sites = offset ? S.sites.concat(res.body.features) : res.body.features;
    S.total = res.body.numberMatched;
    renderSites();
  });
}
function siteName(p) { return (S.lang === "en" && p.name_en) || p.name_zh; }
function renderSites() {
  var ul = $("sites");
  ul.textContent = "";
  if (!S.sites.length) ul.appendChild(el("li", { "class": "muted", text: t("noSites") }));
  S.sites.forEach(function (f) {
    var p = f.properties;
    var badges = [];
    if (p.status === "temporarily_closed") badges.push(el("span", { "class": "badge closed", text: t("statusClosedBadge") }));
    if (p.unresolved_reports > 0) badges.push(el("span", { "class": "badge", text: t("reportsBadge", { n: p.unresolved_reports }) }));
    if (p.verify_request) badges.push(el("span", { "class": "badge verify-ask", text: t("verifyAskBadge") }));
    var name = siteName(p);
    ul.appendChild(el("li", {}, [el("button", { type: "button", "class": "site", "data-id": p.id, onclick: function () { openSite(p.id); } }, [
      el("strong", { lang: dataLang(name), "data-from": "api", text: name }),
      el("span", { "class": "sub" }, [el("code", { text: p.id }), " · ", el("span", { lang: "en", "data-from": "api", text: p.opening_hours })].concat(badges))
    ])]));
  });
  $("more").hidden = S.sites.length >= S.total;
}

/* ---------- one site ---------- */
function openSite(id) {
  return api("GET", "/api/v1/sites/" + encodeURIComponent(id)).then(function (res) {
    if (!res.ok) return;
    setSite(res.body, res.etag);
    $("mine").hidden = true; $("reports").hidden = true; $("editor").hidden = false;
    ["save-msg", "closure-msg"].forEach(function (k) { $(k).hidden = true; });
    $("reload").hidden = true;
    fillForm();
    PREVIEWS.forEach(function (p) { p.run(); });
    loadHistory();
    document.body.dataset.state = "editing";
    window.scrollTo(0, 0);
  });
}
function setSite(feature, etag) {
  if (!("verify_request" in feature.properties)) { // the public GET has no operators' parts: take the list's
    var listed = S.sites.filter(function (f) { return f.properties.id === feature.properties.id; })[0];
    feature.properties.verify_request = listed ? listed.properties.verify_request : null;
  } else {
    S.sites.forEach(function (f) {
      if (f.properties.id === feature.properties.id) f.properties.verify_request = feature.properties.verify_request;
    });
  }
  S.site = feature;
  S.etag = etag || feature.properties.etag || ('"' + feature.properties.version + '"');
  renderSite();
}
function renderSite() {
  var p = S.site.properties;
  var name = siteName(p);
  $("site-name").textContent = name;
  $("site-name").setAttribute("lang", dataLang(name));
  $("site-meta").textContent = p.id + " · " + t("version", { v: p.version }) + (p.address ? " · " + p.address : "");
  var st = $("site-state");
  st.textContent = p.is_open ? t("openNow") : t("closedNow");
  st.className = "state " + (p.is_open ? "open" : "closed");
  var ask = $("verify-ask");
  ask.hidden = !p.verify_request;
  ask.textContent = p.verify_request ? t("verifyAsk", { who: p.verify_request.requested_by,
    at: String(p.verify_request.requested_at || "").slice(0, 10) }) : "";
  renderClosures(p.closures || []);
  renderLive(p);
}
function fillForm() {
  var p = S.site.properties;
  $("hours").value = p.opening_hours || "";
  $("status").value = p.status || "open";
  $("name_zh").value = p.name_zh || "";
  $("name_en").value = p.name_en || "";
  $("phone").value = p.phone || "";
  $("notes").value = p.notes || "";
  renderAmenities(p.amenities || []);
  var ah = p.alert_hours;
  $("alert-on").checked = !!ah;
  $("alert-hours").value = ah ? ah.hours : "";
  renderAlertChoices(ah);
  $("alert-box").hidden = !ah;
}
/* Alert hours: the hours that replace the regular ones while a weather alert of the chosen types, at the chosen
   level or above, covers the site's district. The types and levels come from the vocabulary. */
function renderAlertChoices(ah) {
  var types = (S.vocab && S.vocab.alert_types) || {}, levels = (S.vocab && S.vocab.alert_levels) || {};
  var chosen = ah ? ah.types : ["cold_wave"];
  var box = $("alert-types");
  box.textContent = "";
  Object.keys(types).forEach(function (code) {
    var id = "at-" + code;
    box.appendChild(el("label", { "for": id }, [
      el("input", { type: "checkbox", id: id, value: code, checked: chosen.indexOf(code) >= 0 }),
      label(types[code], S.lang, code)]));
  });
  var sel = $("alert-level");
  sel.textContent = "";
  Object.keys(levels).forEach(function (code) {
    sel.appendChild(el("option", { value: code, text: label(levels[code], S.lang, code) }));
  });
  sel.value = ah ? ah.min_level : "orange";
}
function alertHoursValue() {
  if (!$("alert-on").checked) return null;
  var types = Array.prototype.map.call(document.querySelectorAll("#alert-types input:checked"),
    function (i) { return i.value; }).sort();
  return { hours: $("alert-hours").value.trim(), types: types, min_level: $("alert-level").value };
}
function sameAlertHours(ah) { // the stored value in the form's shape, for the diff
  return ah ? { hours: ah.hours, types: ah.types.slice().sort(), min_level: ah.min_level } : null;
}
function currentAmenities() {
  return Array.prototype.map.call(document.querySelectorAll("#amenities input:checked"), function (i) { return i.value; });
}
function renderAmenities(selected) {
  var box = $("amenities");
  box.textContent = "";
  var labels = (S.vocab && S.vocab.amenities) || {};
  Object.keys(labels).forEach(function (code) {
    var id = "am-" + code;
    box.appendChild(el("label", { "for": id }, [
      el("input", { type: "checkbox", id: id, value: code, checked: selected.indexOf(code) >= 0 }),
      label(labels[code], S.lang, code)
    ]));
  });
}
function formValues() {
  var v = {
    opening_hours: $("hours").value.trim(), alert_hours: alertHoursValue(), status: $("status").value, name_zh: $("name_zh").value.trim(),
    name_en: $("name_en").value.trim() || null, phone: $("phone").value.trim() || null,
    notes: $("notes").value.trim() || null, amenities: currentAmenities().sort()
  };
  return v;
}
function diff() {
  var p = S.site.properties, v = formValues(), out = {};
  FIELDS.forEach(function (f) {
    var before = f === "amenities" ? (p.amenities || []).slice().sort() :
      f === "alert_hours" ? sameAlertHours(p.alert_hours) : (p[f] === undefined ? null : p[f]);
    if (JSON.stringify(before) !== JSON.stringify(v[f])) out[f] = v[f];
  });
  return out;
}
function save(ev) {
  ev.preventDefault();
  var patch = diff();
  var out = $("save-msg");
  if (!Object.keys(patch).length) { msg(out, "ok", "nothingToSave"); return; }
  $("save").disabled = true;
  api("PATCH", "/api/v1/sites/" + encodeURIComponent(S.site.id), patch, { "If-Match": S.etag }).then(function (res) {
    $("save").disabled = false;
    if (res.ok) {
      setSite(res.body, res.etag);
      fillForm();
      msg(out, "ok", "saved");
      $("reload").hidden = true;
      updateListed(res.body);
      loadHistory();
    } else if (res.status === 412) {
      msg(out, "bad", "conflict");
      $("reload").hidden = false;
    } else {
      var errs = (res.body && res.body.errors) || [];
      PREVIEWS.forEach(function (pv) {
        var e = errs.filter(function (x) { return x.field === pv.field || x.field.indexOf(pv.field + ".") === 0; })[0];
        if (e) pv.showError(e);
      });
      out.dataset.detail = problemText(res);
      msg(out, "bad", "failed", problemText(res));
    }
  }, function () { $("save").disabled = false; msg(out, "bad", "failed"); });
}
function verify() {
  api("POST", "/api/v1/sites/" + encodeURIComponent(S.site.id) + "/verify", undefined, { "If-Match": S.etag }).then(function (res) {
    var out = $("save-msg");
    if (res.ok) { setSite(res.body, res.etag); msg(out, "ok", "verified"); loadHistory(); updateListed(res.body); }
    else if (res.status === 412) { msg(out, "bad", "conflict"); $("reload").hidden = false; }
    else msg(out, "bad", "failed", problemText(res));
  });
}
function updateListed(feature) {
  S.sites = S.sites.map(function (f) { return f.id === feature.id ? feature : f; });
}

/* ---------- live preview: of the regular hours and of the alert hours, each under its own input ---------- */
function todayBeijing() {
  return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}
// The preview of the hours typed into input #<inputId>: errors under it (#<inputId>-error...), the next 7 days in
// #<boxId> (#<boxId>-days, #<boxId>-warnings); only the answer to the latest text is shown.
function hoursPreview(inputId, boxId, field) {
  var seq = 0, ctl = null, timer = null, last = null;
  var input = $(inputId), box = $(boxId);
  function showError(e) {
    var node = $(inputId + "-error");
    var expr = input.value.trim();
    node.hidden = false;
    node.dataset.column = e.column || "";
    var what = e.expected || e.reason || "";
    $(inputId + "-error-text").textContent = (e.column ? t("hoursErrorAt", { col: e.column }) : t("hoursError")) + what;
    $(inputId + "-caret").textContent = e.column ? expr + "\n" + new Array(e.column).join(" ") + "^" : expr;
  }
  function run() {
    var expr = input.value.trim();
    if (ctl) ctl.abort();
    var mine = ++seq;
    if (!expr) { box.dataset.status = "idle"; $(boxId + "-days").textContent = ""; last = null; return; }
    ctl = window.AbortController ? new AbortController() : null;
    box.dataset.status = "loading";
    var url = "/api/v1/hours/preview?opening_hours=" + encodeURIComponent(expr) + "&from=" + todayBeijing();
    fetchJSON(url, { signal: ctl ? ctl.signal : undefined }).then(function (body) {
      if (mine !== seq) return;
      $(inputId + "-error").hidden = true;
      last = body;
      renderPreview(body, boxId);
      box.dataset.status = "ok";
      box.dataset.expr = expr;
    }, function (err) {
      if (err.status === undefined) throw err;
      if (mine !== seq) return;
      showError(err.problems[0] || { reason: err.detail });
      box.dataset.status = "error";
    }).catch(function (err) { if (!err || err.name !== "AbortError") box.dataset.status = "error"; });
  }
  input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 250); });
  return { field: field, run: run, showError: showError, rerender: function () { if (last) renderPreview(last, boxId); } };
}
function hhmm(iso, dayIso) {
  var d = iso.slice(0, 10), hm = iso.slice(11, 16);
  return d > dayIso && hm === "00:00" ? "24:00" : hm;
}
function renderPreview(body, boxId) {
  var tb = $(boxId + "-days");
  tb.textContent = "";
  var ws = $(boxId + "-warnings");
  ws.textContent = "";
  (body.warnings || []).forEach(function (w) { ws.appendChild(el("li", { text: w[S.lang] || w.en })); });
  body.days.slice(0, 7).forEach(function (d) {
    var day = d.date.slice(5) + " " + weekdayLabel(S.vocab, d.weekday - 1, S.lang); // weekday: 1 = Monday
    var first = [el("span", { "class": "weekday", text: day })];
    if (d.day_type !== "normal") {
      var hol = d.holiday ? (d.holiday[S.lang] || d.holiday.en) : "";
      first.push(el("br"), el("span", { "class": "holiday", text: t("dayType_" + d.day_type) + (hol ? " · " + hol : "") }));
    }
    var spans = d.intervals.map(function (iv) { return hhmm(iv.start, d.date) + "–" + hhmm(iv.end, d.date); });
    var allDay = spans.length === 1 && spans[0] === "00:00–24:00";
    tb.appendChild(el("tr", { "data-date": d.date }, [
      el("td", {}, first),
      el("td", { "class": spans.length ? "open" : "closed", text: allDay ? t("allDay") : (spans.join(", ") || t("closedAllDay")) })
    ]));
  });
}

/* ---------- live status: what couriers are told about the site right now ---------- */
function renderLive(p) {
  var ls = p.live_status, now = $("live-now"), marks = $("live-marks");
  now.dataset.state = ls ? ls.state : "";
  if (!ls) now.textContent = t("liveNone");
  else {
    var text = t("liveNow", { state: t("live_" + ls.state), t: (ls.posted_at || "").slice(11, 16), until: (ls.expires_at || "").slice(11, 16) });
    if (typeof ls.seats_free === "number") text += " · " + t("liveSeatsNow", { n: ls.seats_free, c: ls.capacity === null ? "?" : ls.capacity });
    now.textContent = text;
  }
  marks.hidden = !p.may_be_closed;
  marks.textContent = p.may_be_closed ? t("liveMayBeClosed", { n: p.may_be_closed.reports }) : "";
}
function seatsValue(id) { var v = $(id).value.trim(); return v === "" ? null : Number(v); }
function liveDone(res, key) {
  var out = $("live-msg");
  if (!res.ok) { msg(out, "bad", "failed", problemText(res)); return; }
  S.site.properties.live_status = res.body.live_status;
  S.site.properties.may_be_closed = res.body.may_be_closed;
  renderLive(S.site.properties);
  msg(out, "ok", key);
  loadHistory();
}
function postLive(ev) {
  ev.preventDefault();
  var body = { state: $("live-state").value, expires_in_minutes: Number($("live-minutes").value),
    seats_free: seatsValue("live-seats"), capacity: seatsValue("live-capacity") };
  api("PUT", "/api/v1/operator/sites/" + encodeURIComponent(S.site.id) + "/status", body).then(function (res) { liveDone(res, "livePosted"); });
}
function clearLive() {
  api("DELETE", "/api/v1/operator/sites/" + encodeURIComponent(S.site.id) + "/status").then(function (res) { liveDone(res, "liveCleared"); });
}

/* ---------- closures ---------- */
function renderClosures(list) {
  var ul = $("closures");
  ul.textContent = "";
  if (!list.length) ul.appendChild(el("li", { "class": "muted", text: t("noClosures") }));
  list.forEach(function (c) {
    var from = c.start || c.from, to = c.end || c.to; // audit entries before 2026-12 used from/to
    ul.appendChild(el("li", { "data-id": c.id }, [
      el("span", {}, [from + " – " + to + (c.reason ? " · " : ""), c.reason ? el("span", { "data-from": "api", lang: dataLang(c.reason), text: c.reason }) : null]),
      el("button", { type: "button", "class": "btn btn-danger", text: t("remove"), onclick: function () { removeClosure(c.id); } })
    ]));
  });
}
function addClosure(ev) {
  ev.preventDefault();
  var out = $("closure-msg");
  var body = { start: $("c-from").value, end: $("c-to").value, reason: $("c-reason").value.trim() };
  api("POST", "/api/v1/sites/" + encodeURIComponent(S.site.id) + "/closures", body, { "If-Match": S.etag }).then(function (res) {
    if (res.ok) { setSite(res.body, res.etag); msg(out, "ok", "closureAdded"); $("c-reason").value = ""; loadHistory(); updateListed(res.body); }
    else if (res.status === 412) { msg(out, "bad", "conflict"); $("reload").hidden = false; }
    else { out.dataset.detail = problemText(res); msg(out, "bad", "failed", problemText(res)); }
  });
}
function removeClosure(id) {
  var out = $("closure-msg");
  api("DELETE", "/api/v1/sites/" + encodeURIComponent(S.site.id) + "/closures/" + id, undefined, { "If-Match": S.etag }).then(function (res) {
    if (res.ok) { setSite(res.body, res.etag); msg(out, "ok", "closureRemoved"); loadHistory(); updateListed(res.body); }
    else if (res.status === 412) { msg(out, "bad", "conflict"); $("reload").hidden = false; }
    else msg(out, "bad", "failed", problemText(res));
  });
}

/* ---------- history ---------- */
function loadHistory() {
  return api("GET", "/api/v1/sites/" + encodeURIComponent(S.site.id) + "/history?limit=50").then(function (res) {
    if (res.ok) { S.history = res.body.items; renderHistory(S.history); }
  });
}
function show(v) {
  if (v === null || v === undefined || v === "") return t("empty");
  if (typeof v === "object" && !Array.isArray(v) && v.state) {
    return t("live_" + v.state) + (typeof v.seats_free === "number" ? " · " + t("liveSeatsNow", { n: v.seats_free, c: v.capacity === null ? "?" : v.capacity }) : "");
  }
  if (Array.isArray(v)) return v.map(function (x) { return typeof x === "object" ? ((x.start || x.from) + "–" + (x.end || x.to)) : x; }).join(", ") || t("empty");
  return String(v);
}
function renderHistory(items) {
  var ol = $("history");
  ol.textContent = "";
  if (!items.length) ol.appendChild(el("li", { "class": "muted", text: t("noHistory") }));
  items.forEach(function (c) {
    var lines = Object.keys(c.changes).map(function (f) {
      var ch = c.changes[f];
      return el("div", {}, [t("field_" + f) + ": ", el("code", { "data-from": "api", text: show(ch.before) }), " → ",
        el("code", { "data-from": "api", text: show(ch.after) })]);
    });
    ol.appendChild(el("li", { "data-id": c.id, "data-action": c.action }, [
      el("div", { "class": "who" }, [c.at.slice(0, 16).replace("T", " ") + " · ", el("span", { "data-from": "api", lang: "en", text: c.actor }),
        " · " + t("action_" + c.action) + (c.version === null ? "" : " · " + t("version", { v: c.version }))])
    ].concat(lines)));
  });
}

/* ---------- couriers' reports ---------- */
function loadReports() {
  // A report names amenities by the vocabulary's labels: render once both have arrived (they load side by side).
  return Promise.all([api("GET", "/api/v1/operator/reports?limit=50"), loadVocab()]).then(function (both) {
    var res = both[0];
    if (res.ok) { S.reports = res.body.items; renderReports(S.reports); }
  });
}
function renderReports(items) {
  var ul = $("report-list");
  ul.textContent = "";
  $("reports-empty").hidden = items.length > 0;
  var names = {};
  S.sites.forEach(function (f) { names[f.id] = siteName(f.properties); });
  items.forEach(function (r) {
    var what = r.type === "amenity_missing"
      ? t("report_amenity_missing", { a: label(S.vocab && S.vocab.amenities[r.amenity], S.lang, r.amenity) })
      : t("report_closed_on_arrival");
    ul.appendChild(el("li", { "data-id": r.id }, [
      el("span", {}, [el("strong", { text: what }), " · ", el("span", { "data-from": "api", text: names[r.site_id] || r.site_id }),
        " · " + (r.observed_at || "").slice(0, 16).replace("T", " "),
        r.note ? el("div", { "data-from": "api", lang: dataLang(r.note), text: r.note }) : null]),
      el("button", { type: "button", "class": "btn", text: t("resolve"), onclick: function () { resolveReport(r.id); } })
    ]));
  });
}
function resolveReport(id) {
  api("POST", "/api/v1/operator/reports/" + id + "/resolve").then(function (res) {
    if (res.ok || res.status === 409) { loadReports(); loadSites(0); }
  });
}

/* ---------- wiring ---------- */
function backToList() {
  S.site = null;
  $("editor").hidden = true; $("mine").hidden = false; $("reports").hidden = false;
  renderSites();
  document.body.dataset.state = "list";
}
function init() {
  $("lang").addEventListener("click", function () { S.lang = S.lang === "zh" ? "en" : "zh"; store("gs.op.lang", S.lang); applyLang(); });
  $("signin-form").addEventListener("submit", function (ev) { ev.preventDefault(); var v = $("token").value.trim(); if (v) signIn(v); });
  $("password-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var login = $("login").value.trim(), password = $("password").value;
    if (login && password) signInWithPassword(login, password);
  });
  $("signout").addEventListener("click", signOut);
  $("more").addEventListener("click", function () { loadSites(S.sites.length); });
  $("back").addEventListener("click", backToList);
  $("edit-form").addEventListener("submit", save);
  $("verify").addEventListener("click", verify);
  $("reload").addEventListener("click", function () { openSite(S.site.id); });
  PREVIEWS = [hoursPreview("hours", "preview", "opening_hours"),
    hoursPreview("alert-hours", "alert-preview", "alert_hours")];
  $("alert-on").addEventListener("change", function () {
    $("alert-box").hidden = !$("alert-on").checked;
    if ($("alert-on").checked && !$("alert-hours").value) { $("alert-hours").value = "24/7"; PREVIEWS[1].run(); }
  });
  $("closure-form").addEventListener("submit", addClosure);
  $("live-form").addEventListener("submit", postLive);
  $("live-clear").addEventListener("click", clearLive);
  $("c-from").value = $("c-to").value = todayBeijing();
  applyLang();
  if (S.token) signIn(S.token); else resume();
}
init(); // a module runs once the document is parsed