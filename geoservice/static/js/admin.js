/* The admin console: union staff of the city and of districts sign in with the same session as /operator (an
   HttpOnly cookie; every change carries the session's CSRF token) and manage accounts, tokens, site assignments,
   couriers' reports, stale sites and the change log. What each sees is decided by the server (its scope); the
   page only shows what the API returns. Every text from the API becomes a text node (el() and fillNodes() of
   common.js), never markup. An ES module: no build step, no CDN. */
import { $, el, makeT, initialLang, dataLang, storageGet, storageSet, fetchJSON, loadVocabulary, label }
  from "./common.js";
import { STR } from "./admin-i18n.js";

var S = { lang: initialLang(storageGet("local", "gs.admin.lang")), csrf: null, me: null, tab: "accounts",
  accounts: [] };
window.adminPage = S; // for tests (never holds a password, a token or a session id)
var t = makeT(STR, function () { return S.lang; });

function msg(node, kind, text) { node.hidden = false; node.dataset.kind = kind; node.textContent = text; }
function api(method, path, body) {
  var headers = { Accept: "application/json, application/problem+json" };
  if (S.csrf && method !== "GET") headers["X-CSRF-Token"] = S.csrf;
  return fetchJSON(path, { method: method, headers: headers, json: body, cache: "no-store", full: true }).then(
    function (r) { return { ok: true, status: r.status, body: r.body }; },
    function (e) { if (e.status === undefined) throw e; return { ok: false, status: e.status, body: e.body, error: e }; });
}
function failed(res) {
  msg($("console-msg"), "bad", t("failed") + " " + ((res.error && res.error.detail) || ("HTTP " + res.status)));
}
function ok(text) { msg($("console-msg"), "ok", text); }
function query(params) {
  var q = Object.keys(params).filter(function (k) { return params[k] !== "" && params[k] !== null; })
    .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); });
  return q.length ? "?" + q.join("&") : "";
}
function text(tag, value, attrs) {
  return el(tag, Object.assign({ lang: dataLang(String(value)), "data-from": "api", text: String(value) }, attrs || {}));
}

/* ---------- language ---------- */
function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach(function (n) { n.textContent = t(n.getAttribute("data-i18n")); });
  document.title = t("title");
  $("lang").textContent = t("langButton");
  $("lang").setAttribute("lang", S.lang === "zh" ? "en" : "zh");
  if (S.me) { renderMe(); show(S.tab); }
}

/* ---------- session ---------- */
function signIn(login, password) {
  var m = $("signin-msg");
  return api("POST", "/api/v1/session", { login: login, password: password }).then(function (res) {
    $("password").value = "";
    if (res.status === 401) return msg(m, "bad", t("badPassword"));
    if (res.status === 429) return msg(m, "bad", t("throttled"));
    if (res.status === 423) return msg(m, "bad", t("locked"));
    if (!res.ok) return msg(m, "bad", t("failed") + " " + res.status);
    return enter(res.body);
  });
}
function enter(session) {
  var account = session.account;
  if (account.role !== "admin" && account.role !== "district_admin") {
    msg($("signin-msg"), "bad", t("notManager"));
    return api("DELETE", "/api/v1/session");
  }
  S.csrf = session.csrf_token; S.me = account;
  $("signin").hidden = true; $("signin-msg").hidden = true; $("console").hidden = false; $("signout").hidden = false;
  renderMe();
  return show("accounts").then(function () { document.body.dataset.state = "console"; });
}
function signOut() {
  return api("DELETE", "/api/v1/session").then(function () {
    S.csrf = null; S.me = null;
    $("console").hidden = true; $("signout").hidden = true; $("signin").hidden = false;
    document.body.dataset.state = "signed-out";
  });
}
function renderMe() {
  var vars = { name: S.me.name, role: t("role_" + S.me.role), districts: (S.me.districts || []).join(", ") };
  $("whoami").textContent = t(S.me.districts && S.me.districts.length ? "whoamiDistricts" : "whoami", vars);
  document.querySelectorAll(".city-only").forEach(function (b) { b.hidden = S.me.role !== "admin"; });
  $("new-role").querySelectorAll("option").forEach(function (o) {
    o.hidden = S.me.role !== "admin" && o.value !== "operator";
  });
}

/* ---------- tabs ---------- */
var LOADERS = {};
function show(tab) {
  if (tab !== S.tab) $("console-msg").hidden = true; // a message belongs to the tab it came from
  S.tab = tab;
  document.querySelectorAll(".tab").forEach(function (b) { b.setAttribute("aria-selected", String(b.dataset.tab === tab)); });
  document.querySelectorAll(".pane").forEach(function (p) { p.hidden = p.id !== "tab-" + tab; });
  return LOADERS[tab]().then(function () { document.body.dataset.tab = tab; });
}

/* ---------- accounts ---------- */
function secret(label, value) {
  $("secret").hidden = false;
  $("secret-label").textContent = label;
  $("secret-value").textContent = value;
}
LOADERS.accounts = function () {
  return api("GET", "/api/v1/admin/accounts").then(function (res) {
    if (!res.ok) return failed(res);
    S.accounts = res.body.items;
    renderAccounts();
  });
};
function stateOf(a) {
  if (a.disabled) return t("stateDisabled");
  if (a.locked) return t("stateLocked");
  return a.has_password ? t("stateActive") : t("stateNoPassword");
}
function renderAccounts() {
  var body = $("accounts");
  body.textContent = "";
  S.accounts.forEach(function (a) {
    var mine = a.login && S.me && a.login === S.me.login;
    var actions = mine || !a.login ? [] : [
      el("button", { type: "button", "class": "btn", "data-act": a.disabled ? "enable" : "disable",
        text: t(a.disabled ? "enable" : "disable"), onclick: function () { setDisabled(a, !a.disabled); } }),
      el("button", { type: "button", "class": "btn", "data-act": "reset", text: t("resetPassword"),
        onclick: function () { reset(a); } }),
      a.locked ? el("button", { type: "button", "class": "btn", "data-act": "unlock", text: t("unlock"),
        onclick: function () { unlock(a); } }) : null,
      el("button", { type: "button", "class": "btn", "data-act": "tokens", text: t("tokens"),
        onclick: function () { showTokens(a); } })];
    body.appendChild(el("tr", { "data-login": a.login || "" }, [
      el("td", {}, [text("span", a.name)]), el("td", {}, [el("code", { text: a.login || "" })]),
      el("td", { text: t("role_" + a.role) + (a.districts.length ? " " + a.districts.join(", ") : "") }),
      el("td", { "class": "state", text: stateOf(a) }), el("td", {}, actions)]));
  });
  fillAssignees();
}
function create(ev) {
  ev.preventDefault();
  var districts = $("new-districts").value.split(/[,，\s]+/).filter(Boolean);
  var body = { name: $("new-name").value, login: $("new-login").value, role: $("new-role").value };
  if (districts.length) body.districts = districts;
  return api("POST", "/api/v1/admin/accounts", body).then(function (res) {
    if (!res.ok) return failed(res);
    $("create-form").reset();
    ok(t("created"));
    return LOADERS.accounts();
  });
}
function path(a, tail) { return "/api/v1/admin/accounts/" + encodeURIComponent(a.login) + tail; }
function setDisabled(a, disabled) {
  return api("POST", path(a, disabled ? "/disable" : "/enable")).then(function (res) {
    if (!res.ok) return failed(res);
    return LOADERS.accounts();
  });
}
function reset(a) {
  return api("POST", path(a, "/setup-code")).then(function (res) {
    if (!res.ok) return failed(res);
    secret(t("setupCode", { name: a.name, at: String(res.body.expires_at).replace("T", " ").slice(0, 16) }),
      res.body.setup_code);
    return LOADERS.accounts();
  });
}
function unlock(a) {
  return api("POST", path(a, "/unlock")).then(function (res) { return res.ok ? LOADERS.accounts() : failed(res); });
}
function showTokens(a) {
  return api("GET", path(a, "/tokens")).then(function (res) {
    if (!res.ok) return failed(res);
    $("tokens").hidden = false;
    $("tokens-h").textContent = t("tokensOf", { name: a.name });
    var ul = $("token-list");
    ul.textContent = "";
    if (!res.body.items.length) ul.appendChild(el("li", { "class": "muted", text: t("noTokens") }));
    res.body.items.forEach(function (tok) {
      ul.appendChild(el("li", { "data-token": tok.id }, [
        text("span", tok.label || "#" + tok.id), " · " + String(tok.created_at).slice(0, 10) + " ",
        tok.revoked_at ? el("span", { "class": "muted", text: t("revoked") }) :
          el("button", { type: "button", "class": "btn", "data-act": "revoke", text: t("revoke"), onclick: function () {
            return api("DELETE", path(a, "/tokens/" + tok.id)).then(function (r) { return r.ok ? showTokens(a) : failed(r); });
          } })]));
    });
    ul.appendChild(el("li", {}, [el("button", { type: "button", "class": "btn", "data-act": "issue",
      text: t("issueToken"), onclick: function () {
        return api("POST", path(a, "/tokens"), { label: "admin console" }).then(function (r) {
          if (!r.ok) return failed(r);
          secret(t("newToken", { name: a.name }), r.body.token);
          return showTokens(a);
        });
      } })]));
  });
}

/* ---------- site assignments ---------- */
function fillAssignees() {
  var sel = $("assign-to");
  var keep = sel.value;
  sel.textContent = "";
  sel.appendChild(el("option", { value: "", text: "—" }));
  S.accounts.filter(function (a) { return a.role === "operator" && a.login; }).forEach(function (a) {
    sel.appendChild(el("option", { value: a.login, text: a.name + " (" + a.login + ")" }));
  });
  sel.value = keep;
}
LOADERS.sites = function () {
  var p = query({ q: $("site-q").value.trim(), district: $("site-district").value.trim(), limit: 100 });
  return Promise.all([S.accounts.length ? null : LOADERS.accounts(), api("GET", "/api/v1/admin/sites" + p)])
    .then(function (all) {
      var res = all[1];
      if (!res.ok) return failed(res);
      var body = $("site-results");
      body.textContent = "";
      if (!res.body.items.length) body.appendChild(el("tr", {}, [el("td", { colspan: "4", "class": "muted", text: t("noResults") })]));
      res.body.items.forEach(function (s) {
        var owners = s.assigned_to.map(function (name) {
          var acct = S.accounts.filter(function (a) { return a.name === name; })[0];
          return el("span", { "class": "owner" }, [text("span", name), acct && acct.login ? el("button", {
            type: "button", "class": "btn", "data-act": "unassign", text: t("unassign", { name: acct.login }),
            onclick: function () { assign(acct.login, s.id, false); } }) : null]);
        });
        body.appendChild(el("tr", { "data-site": s.id }, [
          el("td", {}, [text("strong", s.name_zh), " ", el("code", { text: s.id })]),
          el("td", { text: s.district || "" }), el("td", {}, owners),
          el("td", {}, [el("button", { type: "button", "class": "btn", "data-act": "assign", text: t("assign"),
            onclick: function () { assign($("assign-to").value, s.id, true); } })])]));
      });
    });
};
function assign(login, siteId, yes) {
  if (!login) return msg($("console-msg"), "bad", t("chooseAccount"));
  return api(yes ? "PUT" : "DELETE", "/api/v1/admin/accounts/" + encodeURIComponent(login) + "/sites/" +
    encodeURIComponent(siteId)).then(function (res) {
    if (!res.ok) return failed(res);
    ok(t(yes ? "assigned" : "unassigned"));
    S.accounts = [];
    return LOADERS.sites();
  });
}

/* ---------- reports ---------- */
LOADERS.reports = function () {
  var p = query({ status: $("r-status").value, type: $("r-type").value, district: $("r-district").value.trim(),
    site_id: $("r-site").value.trim(), limit: 100 });
  return api("GET", "/api/v1/admin/reports" + p).then(function (res) {
    if (!res.ok) return failed(res);
    var ul = $("report-list");
    ul.textContent = "";
    if (!res.body.items.length) ul.appendChild(el("li", { "class": "muted", text: t("noReports") }));
    res.body.items.forEach(function (r) {
      var note = el("input", { type: "text", maxlength: "500", "aria-label": t("noteLabel"), placeholder: t("noteLabel") });
      var parts = [el("strong", { text: t("report_" + r.type) + (r.amenity ? " (" + r.amenity + ")" : "") }), " ",
        el("code", { text: r.site_id }), " · " + String(r.received_at).slice(0, 16).replace("T", " ")];
      if (r.note) parts.push(el("p", {}, [text("span", r.note)]));
      if (r.status === "resolved") {
        parts.push(el("p", { "class": "muted" }, [text("span", t("resolvedBy", { who: r.resolved_by, note: r.resolution_note || "" }))]));
      } else {
        parts.push(el("div", { "class": "row" }, [note, el("button", { type: "button", "class": "btn", "data-act": "resolve",
          text: t("resolve"), onclick: function () {
            return api("POST", "/api/v1/operator/reports/" + r.id + "/resolve", { note: note.value }).then(function (x) {
              return x.ok ? LOADERS.reports() : failed(x);
            });
          } })]));
      }
      ul.appendChild(el("li", { "data-report": r.id }, parts));
    });
  });
};

/* ---------- stale sites ---------- */
LOADERS.stale = function () {
  var p = query({ days: $("stale-days").value.trim(), district: $("stale-district").value.trim(), limit: 200 });
  return api("GET", "/api/v1/admin/stale" + p).then(function (res) {
    if (!res.ok) return failed(res);
    $("stale-count").textContent = t("staleCount", { n: res.body.total, days: res.body.days });
    var ul = $("stale-list");
    ul.textContent = "";
    if (!res.body.items.length) ul.appendChild(el("li", { "class": "muted", text: t("noStale") }));
    res.body.items.forEach(function (s) { ul.appendChild(staleItem(s)); });
  });
};
function staleItem(s) {
  var ask = s.verify_request;
  return el("li", { "data-site": s.id }, [text("strong", s.name_zh), " ", el("code", { text: s.id }), " · ",
    el("span", { text: s.verified_at ? t("verifiedOn", { d: String(s.verified_at).slice(0, 10) }) : t("neverVerified") }),
    " ", ask ? el("span", { "class": "badge asked", text: t("asked", { who: ask.requested_by,
      at: String(ask.requested_at).slice(0, 10) }) }) :
      el("button", { type: "button", "class": "btn", "data-act": "ask", text: t("askVerify"), onclick: function (ev) {
        var li = ev.target.closest("li");
        return api("POST", "/api/v1/admin/sites/" + encodeURIComponent(s.id) + "/verify-request").then(function (res) {
          if (!res.ok) return failed(res);
          li.replaceWith(staleItem(res.body));
        });
      } })]);
}

/* ---------- change log ---------- */
function shown(v) {
  if (v === null || v === undefined || v === "") return t("empty");
  return typeof v === "string" ? v : JSON.stringify(v);
}
LOADERS.changes = function () {
  var p = query({ site_id: $("ch-site").value.trim(), actor: $("ch-actor").value.trim(),
    district: $("ch-district").value.trim(), from: $("ch-from").value, to: $("ch-to").value, limit: 100 });
  return api("GET", "/api/v1/admin/changes" + p).then(function (res) {
    if (!res.ok) return failed(res);
    var ol = $("change-list");
    ol.textContent = "";
    if (!res.body.items.length) ol.appendChild(el("li", { "class": "muted", text: t("noChanges") }));
    res.body.items.forEach(function (c) {
      var diffs = Object.keys(c.changes || {}).map(function (field) {
        var d = c.changes[field] || {};
        return el("li", { "class": "diff" }, [el("code", { text: field }), ": ", el("del", { text: shown(d.before) }),
          " → ", el("ins", { text: shown(d.after) })]);
      });
      ol.appendChild(el("li", { "data-change": c.id }, [
        text("span", t("changeLine", { at: String(c.at).slice(0, 16).replace("T", " "), actor: c.actor, action: c.action,
          site: c.site_id })), el("ul", {}, diffs)]));
    });
  });
};

/* ---------- weather alerts: declare, move the end, delete (a district admin within its districts) ---------- */
function bjMinutes(iso) { // an instant as "YYYY-MM-DD HH:MM" Beijing time, whatever the browser's zone
  var d = new Date(Date.parse(iso) + 8 * 3600 * 1000);
  return isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(0, 16).replace("T", " ");
}
function fillAlertChoices(v) {
  [["alert-type", v.alert_types], ["alert-level", v.alert_levels]].forEach(function (p) {
    var sel = $(p[0]);
    var keep = sel.value;
    sel.textContent = "";
    Object.keys(p[1] || {}).forEach(function (code) {
      sel.appendChild(el("option", { value: code, text: label(p[1][code], S.lang, code) }));
    });
    if (keep) sel.value = keep;
  });
}
LOADERS.alerts = function () {
  if (!$("alert-districts").value && S.me.districts && S.me.districts.length) {
    $("alert-districts").value = S.me.districts.join(", ");
  }
  var vocab = api("GET", "/api/v1/vocabulary").then(function (res) {
    if (!res.ok) return msg($("console-msg"), "bad", t("noVocabulary"));
    fillAlertChoices(res.body);
  });
  var list = api("GET", "/api/v1/alerts").then(function (res) {
    if (!res.ok) return failed(res);
    var ul = $("alert-list");
    ul.textContent = "";
    if (!res.body.items.length) ul.appendChild(el("li", { "class": "muted", text: t("noAlerts") }));
    res.body.items.forEach(function (a) { ul.appendChild(alertItem(a)); });
  });
  return Promise.all([vocab, list]);
};
function alertItem(a) {
  var started = Date.parse(a.start) <= Date.now();
  var end = el("input", { type: "datetime-local", "aria-label": t("newEndLabel"), "data-field": "end",
    value: bjMinutes(a.end).replace(" ", "T") });
  var line = t("alertLine", { type: label(a.type_label, S.lang, a.type), level: label(a.level_label, S.lang, a.level),
    districts: a.districts.join(", "), start: bjMinutes(a.start), end: bjMinutes(a.end), who: a.created_by });
  function change(value, done) {
    return api("PATCH", "/api/v1/alerts/" + a.id, { end: value }).then(function (r) {
      if (!r.ok) return failed(r);
      ok(t(done));
      return LOADERS.alerts();
    });
  }
  return el("li", { "data-alert": a.id, "data-level": a.level }, [
    el("span", { "class": "badge", text: t(started ? "alertInForce" : "alertUpcoming") }), " ", text("span", line),
    el("div", { "class": "row" }, [end,
      el("button", { type: "button", "class": "btn", "data-act": "move-end", text: t("moveEnd"),
        onclick: function () { return change(end.value, "alertChanged"); } }),
      started ? el("button", { type: "button", "class": "btn", "data-act": "end-now", text: t("endNow"),
        onclick: function () { return change("now", "alertChanged"); } }) : null,
      el("button", { type: "button", "class": "btn", "data-act": "delete", text: t("deleteAlert"),
        onclick: function () {
          return api("DELETE", "/api/v1/alerts/" + a.id).then(function (r) {
            if (!r.ok) return failed(r);
            ok(t("alertDeleted"));
            return LOADERS.alerts();
          });
        } })])]);
}
function declareAlert(ev) {
  ev.preventDefault();
  var body = { type: $("alert-type").value, level: $("alert-level").value,
    districts: $("alert-districts").value.split(/[,，\s]+/).filter(Boolean), end: $("alert-end").value };
  if ($("alert-start").value) body.start = $("alert-start").value;
  return api("POST", "/api/v1/alerts", body).then(function (res) {
    if (!res.ok) return failed(res);
    $("alert-start").value = ""; $("alert-end").value = "";
    ok(t("alertDeclared"));
    return LOADERS.alerts();
  });
}

/* ---------- site files (city admins): preview, then load ---------- */
function postFile(url, file) {
  var form = new FormData();
  form.append("file", file, file.name);
  var headers = { Accept: "application/json, application/problem+json", "X-CSRF-Token": S.csrf || "" };
  return fetch(url, { method: "POST", body: form, headers: headers, cache: "no-store" }).then(function (r) {
    return r.text().then(function (raw) {
      var body = null;
      try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
      return { ok: r.ok, status: r.status, body: body };
    });
  });
}
function problemLine(p) { return (p.where ? p.where + ": " : "") + p.field + ": " + p.reason; }
function importFile(dryRun) {
  var file = $("import-file").files[0];
  var summary = $("import-summary");
  if (!file) return Promise.resolve(msg(summary, "bad", t("noFile")));
  var p = query({ dry_run: dryRun ? "true" : "false", skip_invalid: $("import-skip").checked ? "true" : "false",
    crs: $("import-crs").value, kind: $("import-kind").value });
  $("import-apply").hidden = true;
  return postFile("/api/v1/admin/sites/import" + p, file).then(function (res) {
    var list = $("import-problems");
    list.textContent = "";
    var b = res.body || {};
    if (!res.ok) {
      var problems = Array.isArray(b.errors) ? b.errors : [];
      msg(summary, "bad", problems.length ? t("importRefused", { n: problems.length }) : t("failed") + " " +
        (b.detail || "HTTP " + res.status));
      problems.forEach(function (e) { list.appendChild(text("li", problemLine(e), { "class": "problem" })); });
      document.body.dataset.import = "refused";
      return;
    }
    var skipped = b.skipped || [];
    var vars = { ins: b.inserted.length, upd: b.updated.length, same: b.unchanged,
      skip: skipped.length ? t("importSkipped", { n: skipped.length }) : "" };
    msg(summary, "ok", t(dryRun ? "importPreview" : "importDone", vars));
    skipped.forEach(function (r) {
      r.problems.forEach(function (e) { list.appendChild(text("li", problemLine(e), { "class": "skipped" })); });
    });
    if (b.conflicts.length) list.appendChild(el("li", { "class": "muted", text: t("kept") }));
    b.conflicts.forEach(function (c) { list.appendChild(text("li", c.where + ": " + c.description, { "class": "kept" })); });
    $("import-apply").hidden = !dryRun;
    document.body.dataset.import = dryRun ? "previewed" : "loaded";
  });
}
LOADERS.imports = function () { // the kinds' labels come from the vocabulary, in the page's language
  return loadVocabulary().then(function (v) {
    var sel = $("import-kind");
    var keep = sel.value;
    sel.querySelectorAll("option[data-kind]").forEach(function (o) { o.remove(); });
    Object.keys(v.kinds).forEach(function (k) {
      sel.appendChild(el("option", { value: k, "data-kind": k, text: label(v.kinds[k], S.lang, k) }));
    });
    sel.value = keep;
  }, function () { /* without the vocabulary the file's own kind column still works */ });
};

/* ---------- partners' webhooks (city admins) ---------- */
LOADERS.webhooks = function () {
  return api("GET", "/api/v1/admin/webhooks").then(function (res) {
    if (!res.ok) return failed(res);
    var ul = $("hook-list");
    ul.textContent = "";
    if (!res.body.items.length) ul.appendChild(el("li", { "class": "muted", text: t("noHooks") }));
    res.body.items.forEach(function (h) {
      var state = [t("hookLine", { through: h.delivered_through })];
      if (h.attempts) state.push(t("hookRetrying", { n: h.attempts, at: String(h.next_attempt_at).slice(0, 16)
        .replace("T", " "), error: h.last_error || "" }));
      if (h.dead_letters) state.push(t("hookDead", { n: h.dead_letters }));
      ul.appendChild(el("li", { "data-hook": h.id }, [text("code", h.url), " · " + state.join(" · ") + " ",
        el("button", { type: "button", "class": "btn", "data-act": "letters", text: t("deadLetters"),
          onclick: function () { return showLetters(h); } }),
        el("button", { type: "button", "class": "btn", "data-act": "remove", text: t("removeHook"),
          onclick: function () {
            return api("DELETE", "/api/v1/admin/webhooks/" + h.id).then(function (r) {
              return r.ok ? LOADERS.webhooks() : failed(r);
            });
          } })]));
    });
  });
};
function showLetters(h) {
  return api("GET", "/api/v1/admin/webhooks/" + h.id + "/dead-letters").then(function (res) {
    if (!res.ok) return failed(res);
    $("letters").hidden = false;
    $("letters-h").textContent = t("lettersOf", { url: h.url });
    var ul = $("letter-list");
    ul.textContent = "";
    if (!res.body.items.length) ul.appendChild(el("li", { "class": "muted", text: t("noLetters") }));
    res.body.items.forEach(function (d) {
      var line = t("letterLine", { first: d.first, last: d.last, n: d.entries, at: String(d.failed_at).slice(0, 16)
        .replace("T", " "), error: d.last_error });
      ul.appendChild(el("li", { "data-letter": d.id }, [text("span", line), " ",
        d.replayed_at ? el("span", { "class": "muted", text: t("replayed") }) :
          el("button", { type: "button", "class": "btn", "data-act": "replay", text: t("replay"), onclick: function () {
            return api("POST", "/api/v1/admin/webhooks/" + h.id + "/dead-letters/" + d.id + "/replay").then(
              function (r) { if (!r.ok) return failed(r); ok(t("replayQueued")); });
          } })]));
    });
  });
}
function registerHook(ev) {
  ev.preventDefault();
  return api("POST", "/api/v1/admin/webhooks", { url: $("hook-url").value.trim() }).then(function (res) {
    if (!res.ok) return failed(res);
    $("hook-form").reset();
    $("hook-secret").hidden = false;
    $("hook-secret-label").textContent = t("hookSecret");
    $("hook-secret-value").textContent = res.body.secret;
    return LOADERS.webhooks();
  });
}

/* ---------- wiring ---------- */
function init() {
  applyLang();
  $("lang").addEventListener("click", function () {
    S.lang = S.lang === "zh" ? "en" : "zh"; storageSet("local", "gs.admin.lang", S.lang); applyLang();
  });
  $("password-form").addEventListener("submit", function (ev) { ev.preventDefault(); signIn($("login").value, $("password").value); });
  $("signout").addEventListener("click", signOut);
  document.querySelectorAll(".tab").forEach(function (b) { b.addEventListener("click", function () { show(b.dataset.tab); }); });
  $("create-form").addEventListener("submit", create);
  $("import-form").addEventListener("submit", function (ev) { ev.preventDefault(); importFile(true); });
  $("import-apply").addEventListener("click", function () { importFile(false); });
  $("hook-form").addEventListener("submit", registerHook);
  $("alert-form").addEventListener("submit", declareAlert);
  [["site-search", "sites"], ["report-filter", "reports"], ["stale-filter", "stale"], ["change-filter", "changes"]]
    .forEach(function (p) { $(p[0]).addEventListener("submit", function (ev) { ev.preventDefault(); LOADERS[p[1]](); }); });
  api("GET", "/api/v1/session").then(function (res) { // a reload carries on with a live session
    if (res.ok && res.body && res.body.via === "session") return enter(res.body);
    document.body.dataset.state = "signed-out";
  }, function () { document.body.dataset.state = "signed-out"; });
}
init();
