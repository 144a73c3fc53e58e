/* Couriers' page: nearest OPEN rest sites. No framework; the list never waits for the map. An ES module.
   UI text comes from i18n.js only; the labels of data (kinds, amenities, weekdays) from GET /api/v1/vocabulary;
   the helpers from common.js (shared with the operators' page); coordinates for navigation apps from datum.js. */
import { $, el, makeT, fillNodes, initialLang, dataLang, storageGet, storageSet, storageGetJSON, storageSetJSON, fetchJSON, loadVocabulary,
  label, weekdayLabel } from "./common.js";
import { STR } from "./i18n.js";
import * as Datum from "./datum.js";
import * as Offline from "./offline.js";

var LIMIT = 10, ARRIVE_MIN = 60, TIMEOUT_MS = 20000;
// Which amenities get a filter chip (codes only: their labels come from the vocabulary).
var FILTER_AMENITIES = ["drinking_water", "hot_water", "heating", "air_conditioning", "toilet", "charging",
  "microwave", "wifi", "nursing_chair", "changing_table"];
var CODE = /^[a-z_]+$/;
// WGS-84
var LANDMARKS = [
  { id: "tiananmen", lon: 116.3975, lat: 39.9087 }, { id: "bjstation", lon: 116.4270, lat: 39.9030 },
  { id: "guomao", lon: 116.4595, lat: 39.9087 }, { id: "zhongguancun", lon: 116.3103, lat: 39.9834 },
  { id: "bjwest", lon: 116.3217, lat: 39.8949 }, { id: "wangjing", lon: 116.4700, lat: 39.9970 }
];
var REPORTS_PATH = /^\/api\/v1\/sites\/\{[^}]+\}\/reports$/;

function load(k) { return storageGetJSON("local", "gs." + k); }
function save(k, v) { storageSetJSON("local", "gs." + k, v); }
function codes(list) { return Array.isArray(list) ? list.filter(function (c) { return typeof c === "string" && CODE.test(c); }) : []; }

var prefs = load("prefs") || {};
var S = {
  lang: initialLang(load("lang")),
  // The page opens as index.html draws it: the choice offered, the chooser open (no layout shift at start-up).
  loc: "ask", origin: null, chooser: true, picking: false, districts: null,
  // Remembered kinds are checked against the vocabulary when it arrives (see vocabularyArrived).
  kinds: codes(prefs.kinds),
  amenities: codes(prefs.amenities).filter(function (a) { return FILTER_AMENITIES.indexOf(a) >= 0; }),
  arrive: prefs.arrive !== false, includeClosed: false,
  status: "idle", error: null, data: null, vocab: null, offline: null
};
// For tests and debugging: the exact request the page made and what it got back.
var api = window.geoservice = { state: S, lastUrl: null, lastBody: null };

var tr = makeT(STR, function () { return S.lang; });
function vocab(group) { return (S.vocab && S.vocab[group]) || {}; }
// Labels of data: the vocabulary's; before it has arrived (or if it failed), the ones the feature carries.
function kindLabel(k, p) { return label(vocab("kinds")[k] || (p && p.kind_label), S.lang, k); }
function amenityLabel(code, p) {
  var al = p && (p.amenity_labels || []).filter(function (x) { return x.code === code; })[0];
  return label(vocab("amenities")[code] || al, S.lang, code);
}
// Sunday = 0, as Date.getUTCDay() counts; the vocabulary's weekdays start on Monday.
function weekday(wd) { return weekdayLabel(S.vocab, (wd + 6) % 7, S.lang); }
function icon(id) {
  var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg"), use = document.createElementNS(ns, "use");
  svg.setAttribute("class", "i");
  svg.setAttribute("aria-hidden", "true");
  use.setAttribute("href", "#" + id);
  svg.appendChild(use);
  return svg;
}
// Through the CSSOM: the page's Content-Security-Policy allows no inline style attributes.
function kindColour(node, kind) { node.style.setProperty("--kc", "var(--k-" + kind + ")"); }
function amenityIcon(code) { return icon(document.getElementById("a-" + code) ? "a-" + code : "a-other"); }

/* ---------- time: Beijing wall clock from ISO strings, whatever the phone's time zone ---------- */
function pad(n) { return (n < 10 ? "0" : "") + n; }
function bj(iso) {
  var m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?(Z|([+-])(\d\d):?(\d\d))?$/.exec(iso || "");
  if (!m) return null;
  var off = !m[7] ? 480 : m[7] === "Z" ? 0 : (m[8] === "-" ? -1 : 1) * (+m[9] * 60 + +m[10]);
  var t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)) - off * 60000;
  var local = t + 480 * 60000, d = new Date(local);
  return { t: t, day: Math.floor(local / 86400000), wd: d.getUTCDay(), hm: pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()),
    md: pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) };
}
function stateOf(p) {
  if (p.state_unknown) return { cls: "closed", text: tr("stateUnknown") };
  var at = bj(p.state_at || (S.data && S.data.query && S.data.query.at));
  if (p.is_open) {
    if (p.open_all_week) return { cls: "open", text: tr("open24") };
    var u = bj(p.open_until);
    if (!u) return { cls: "open", text: tr("openNow") };
    var text = tr("openUntil", { t: at && u.day === at.day ? u.hm : weekday(u.wd) + " " + u.hm }), cls = "open";
    var mins = at ? Math.round((u.t - at.t) / 60000) : 999;
    if (mins <= 60) { text += " · " + tr("closesIn", { n: Math.max(mins, 0) }); cls = "soon"; }
    return { cls: cls, text: text };
  }
  var n = bj(p.next_open);
  return { cls: "closed", text: n ? tr("closedOpens", { t: weekday(n.wd) + " " + n.hm }) : tr("closed") };
}
function distanceText(m) {
  return m < 1000 ? tr("meters", { n: Math.round(m) }) : tr("kilometers", { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
}

/* ---------- navigation links, each in the datum its app expects ---------- */
function navLinks(lon, lat, nameZh, name) {
  var g = Datum.wgs84ToGcj02(lon, lat), b = Datum.gcj02ToBd09(g[0], g[1]), e = encodeURIComponent;
  function f(x) { return x.toFixed(6); }
  return [
    ["amap", "https://uri.amap.com/marker?position=" + f(g[0]) + "," + f(g[1]) + "&name=" + e(nameZh) + "&coordinate=gaode"],
    ["baidu", "https://api.map.baidu.com/marker?location=" + f(b[1]) + "," + f(b[0]) + "&title=" + e(nameZh) +
      "&content=" + e(nameZh) + "&output=html&coord_type=bd09ll"],
    ["apple", "https://maps.apple.com/?ll=" + f(lat) + "," + f(lon) + "&q=" + e(name)],
    ["osm", "https://www.openstreetmap.org/?mlat=" + f(lat) + "&mlon=" + f(lon) + "#map=18/" + f(lat) + "/" + f(lon)]
  ];
}

/* ---------- location ---------- */
var locateToken = 0;
function locate() {
  var my = ++locateToken;
  if (!("geolocation" in navigator)) { S.loc = "none"; openChooser(true); renderLoc(); return; }
  S.loc = "locating";
  renderLoc();
  navigator.geolocation.getCurrentPosition(function (pos) {
    if (my !== locateToken) return; // the user chose a place meanwhile
    setOrigin({ src: "gps", lat: pos.coords.latitude, lon: pos.coords.longitude });
  }, function (err) {
    if (my !== locateToken) return;
    S.loc = err && err.code === 1 ? "denied" : "failed";
    openChooser(true);
    renderLoc();
  }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
}
/* On load the page only uses a permission already granted: the browser's prompt comes on a tap of "use my location". */
function startLocation() {
  var my = locateToken;
  function show(state) { if (my !== locateToken) return; S.loc = state; openChooser(true); renderLoc(); }
  if (!("geolocation" in navigator)) { show("none"); return; }
  if (!navigator.permissions || !navigator.permissions.query) { show("ask"); return; }
  navigator.permissions.query({ name: "geolocation" }).then(function (p) {
    if (my !== locateToken) return; // the user chose a place meanwhile
    if (p.state === "granted") locate(); else show(p.state === "denied" ? "denied" : "ask");
  }, function () { show("ask"); });
}
function setOrigin(o) {
  locateToken++;
  S.origin = o;
  S.loc = "set";
  S.includeClosed = false;
  S.picking = false;
  if (o.src !== "district") $("district").value = "";
  openChooser(false);
  renderLoc();
  renderPick();
  search();
}
function placeName(o) {
  if (o.src === "gps") return tr("myLocation");
  if (o.src === "map") return tr("pickedPoint");
  if (o.src === "landmark") return landmarkName(o.id);
  var d = (S.districts || []).filter(function (x) { return x.adcode === o.id; })[0];
  return d ? (S.lang === "en" ? d.name_en || d.name_zh : d.name_zh) : o.id;
}
function renderLoc() {
  var ls = $("locStatus"), key = { locating: "locating", ask: "locAsk", denied: "locDenied", failed: "locFailed", none: "locNone" }[S.loc];
  ls.textContent = "";
  ls.appendChild(icon("i-pin"));
  ls.appendChild(el("span", { text: S.origin && S.loc === "set" ? tr("nearPlace", { place: placeName(S.origin) }) : tr(key) }));
  ls.className = "loc-status" + (S.loc === "denied" || S.loc === "failed" || S.loc === "none" ? " err" : "");
}
function openChooser(open) {
  S.chooser = open;
  $("chooser").hidden = !open;
  $("toggleChooser").setAttribute("aria-expanded", String(open));
  $("toggleChooser").textContent = tr(open ? "hideChooser" : "choosePlace");
  if (open) loadDistricts();
}
function landmarkName(id) { return (STR[S.lang].landmark || {})[id] || STR.en.landmark[id] || id; }
/* ---------- the service area (from the vocabulary): the map's first view, landmarks inside it ---------- */
function area() { return S.vocab && S.vocab.service_area; }
function areaView() { var a = area(); return a ? [a.centre[1], a.centre[0]] : [39.9087, 116.3975]; }
function inArea(l) {
  var b = area() && area().bbox;
  return !b || (l.lon >= b[0] && l.lat >= b[1] && l.lon <= b[2] && l.lat <= b[3]);
}
function areaArrived() { // another city: drop the landmarks outside it, open the map there
  if (LANDMARKS.filter(inArea).length !== LANDMARKS.length) renderLandmarks();
  if (map && !S.origin) map.setView(areaView(), 12);
}
function renderLandmarks() {
  var box = $("landmarks"), shown = LANDMARKS.filter(inArea);
  box.textContent = "";
  box.hidden = box.previousElementSibling.hidden = !shown.length; // Beijing's landmarks, in Beijing only
  shown.forEach(function (l) {
    box.appendChild(el("button", { type: "button", "class": "btn", "data-landmark": l.id, text: landmarkName(l.id),
      onclick: function () { setOrigin({ src: "landmark", id: l.id, lat: l.lat, lon: l.lon }); } }));
  });
}
var districtsLoading = false;
function loadDistricts() {
  if (S.districts || districtsLoading) return;
  districtsLoading = true;
  fetchJSON("/api/v1/districts", { headers: { Accept: "application/geo+json, application/problem+json" } })
    .then(function (d) { S.districts = d.features.map(function (f) { return f.properties; }); renderDistricts(); })
    .catch(function () { /* the landmarks still work */ })
    .then(function () { districtsLoading = false; });
}
function renderDistricts() {
  var sel = $("district"), keep = sel.value;
  sel.textContent = "";
  sel.appendChild(el("option", { value: "", text: tr("chooseDistrict") }));
  (S.districts || []).forEach(function (d) {
    sel.appendChild(el("option", { value: d.adcode, text: S.lang === "en" ? d.name_en || d.name_zh : d.name_zh }));
  });
  sel.value = keep;
}

/* ---------- the vocabulary: labels of kinds, amenities and weekdays ---------- */
function ensureVocab() {
  if (S.vocab) return Promise.resolve(S.vocab);
  return loadVocabulary().then(function (v) {
    if (!S.vocab) { S.vocab = v; vocabularyArrived(); areaArrived(); }
    return v;
  }, function () { return null; }); // asked again by the next search, or when the filters are opened
}
function vocabularyArrived() {
  var kinds = S.kinds.filter(function (k) { return k in S.vocab.kinds; });
  var amenities = S.amenities.filter(function (a) { return a in S.vocab.amenities; });
  if (kinds.length !== S.kinds.length || amenities.length !== S.amenities.length) {
    S.kinds = kinds; // a remembered filter this service does not know any more
    S.amenities = amenities;
    savePrefs();
  }
  renderFilters();
  if (S.status === "ok") renderList();
}

/* ---------- filters ---------- */
function savePrefs() { save("prefs", { kinds: S.kinds, amenities: S.amenities, arrive: S.arrive }); }
function toggle(list, v) { var i = list.indexOf(v); if (i >= 0) list.splice(i, 1); else list.push(v); }
function renderFilters() {
  var kb = $("kinds"), ab = $("amenities");
  kb.textContent = "";
  ab.textContent = "";
  Object.keys(vocab("kinds")).forEach(function (k) {
    kb.appendChild(el("button", { type: "button", "class": "chip", "data-kind": k, "aria-pressed": String(S.kinds.indexOf(k) >= 0),
      onclick: function () { toggle(S.kinds, k); savePrefs(); renderFilters(); S.includeClosed = false; search(); } },
      [icon("k-" + k), kindLabel(k)]));
  });
  FILTER_AMENITIES.filter(function (a) { return a in vocab("amenities"); }).forEach(function (a) {
    ab.appendChild(el("button", { type: "button", "class": "chip", "data-amenity": a, "aria-pressed": String(S.amenities.indexOf(a) >= 0),
      onclick: function () { toggle(S.amenities, a); savePrefs(); renderFilters(); S.includeClosed = false; search(); } },
      [amenityIcon(a), amenityLabel(a)]));
  });
  var n = S.kinds.length + S.amenities.length, sum = $("filterSummary");
  sum.textContent = n ? tr("filtersActive", { n: n }) : tr("filters");
  sum.className = n ? "on" : "";
  $("arrive").checked = S.arrive;
}

/* ---------- search ---------- */
var seq = 0, ctrl = null;
function queryUrl() {
  var p = new URLSearchParams();
  p.set("lat", S.origin.lat.toFixed(6));
  p.set("lon", S.origin.lon.toFixed(6));
  S.kinds.forEach(function (k) { p.append("kind", k); });
  S.amenities.forEach(function (a) { p.append("amenity", a); });
  if (S.arrive) p.set("arrive_within", String(ARRIVE_MIN));
  if (S.includeClosed) p.set("include_closed", "true");
  p.set("limit", String(LIMIT));
  p.set("intervals_hours", String(Offline.HORIZON_HOURS)); // so that offline, open states can be recomputed
  return "/api/v1/sites/nearest?" + p.toString();
}
function search() {
  if (!S.origin) return;
  if (ctrl) ctrl.abort();
  var my = ++seq;
  S.status = "loading";
  renderStatus();
  // The query's kinds and the cards' labels and weekdays are the vocabulary's: a search waits for it only while it
  // has not come yet (it is asked for at start-up, in parallel with the location). Without it, cards use the
  // labels each feature carries.
  ensureVocab().then(function () { if (my === seq) fetchNearest(my); });
  fetchAlerts();
}
// Weather alerts in force or upcoming (public); the banner shows those covering a district of the results.
function fetchAlerts() {
  fetchJSON("/api/v1/alerts", { headers: { Accept: "application/json" } }).then(function (b) {
    S.alerts = b && Array.isArray(b.items) ? b.items : [];
    if (S.status === "ok") renderStatus();
  }, function () {});
}
function alertLabel(group, code, own) { return label(vocab(group)[code] || own, S.lang, code); }
function alertBanner(feats) {
  var shown = {};
  feats.forEach(function (f) { var d = f.properties.district; if (d && d.adcode) shown[d.adcode] = true; });
  var now = Date.now();
  return (S.alerts || []).filter(function (a) {
    return Date.parse(a.end) > now && (a.districts || []).some(function (d) { return shown[d]; });
  }).map(function (a) {
    var until = bj(a.end), from = bj(a.start), started = Date.parse(a.start) <= now;
    var text = tr(started ? "alertUntil" : "alertFrom", { type: alertLabel("alert_types", a.type, a.type_label),
      level: alertLabel("alert_levels", a.level, a.level_label), t: until ? until.md + " " + until.hm : "",
      s: from ? from.md + " " + from.hm : "" });
    return el("div", { "class": "notice alert alert-" + a.level, "data-alert": a.type, "data-level": a.level,
      role: "status" }, [icon("i-warn"), el("span", { text: text })]);
  });
}
function fetchNearest(my) {
  var c = ctrl = new AbortController(), timedOut = false, url = queryUrl();
  var timer = setTimeout(function () { timedOut = true; c.abort(); }, TIMEOUT_MS);
  api.lastUrl = url;
  fetchJSON(url, { headers: { Accept: "application/geo+json, application/problem+json" }, signal: c.signal,
    full: true }).then(function (r) { return { ok: true, b: r.body, status: r.status }; }, function (e) {
      if (e.status === undefined) throw e; // no answer: offline, aborted or timed out
      return { ok: false, b: e.body, status: e.status };
    })
    .then(function (x) {
      if (my !== seq) return;
      if (x.ok && x.b && x.b.features) {
        S.status = "ok"; S.data = x.b; S.error = null; S.offline = null; api.lastBody = x.b;
        Offline.keep(function (text) { return storageSet("local", "gs.last", text); }, x.b, Date.now());
      } else {
        S.status = "error";
        S.error = { detail: (x.b && (x.b.detail || x.b.title)) || String(x.status) };
      }
      render(url);
    }, function () {
      if (my !== seq) return;
      if (showKept()) { render(url); return; }
      S.status = "error";
      S.error = { key: timedOut ? "timeout" : "offline" };
      render(url);
    })
    .then(function () { clearTimeout(timer); });
}

/* ---------- offline: the last answer, its open states recomputed for now ---------- */
function showKept() {
  var saved = Offline.kept(function () { return storageGet("local", "gs.last"); });
  if (!saved) return false;
  S.status = "ok"; S.error = null; S.data = Offline.replay(saved, Date.now());
  S.offline = { savedAt: saved.saved_at };
  return true;
}
function ageText(ms) {
  var min = Math.max(0, Math.round(ms / 60000));
  if (min < 60) return tr("ageMinutes", { n: min });
  if (min < 48 * 60) return tr("ageHours", { n: Math.round(min / 60) });
  return tr("ageDays", { n: Math.round(min / 1440) });
}
function offlineNotice() {
  var saved = new Date(S.offline.savedAt + 480 * 60000);
  return el("div", { "class": "notice offline", "data-code": "offline", role: "status" }, [icon("i-warn"),
    el("span", { text: tr("offlineShowing", { age: ageText(Date.now() - S.offline.savedAt),
      t: pad(saved.getUTCHours()) + ":" + pad(saved.getUTCMinutes()) }) })]);
}

/* ---------- results ---------- */
function render(url) {
  renderStatus();
  renderList();
  drawMap();
  if (url) $("list").setAttribute("data-url", url);
  document.body.setAttribute("data-status", S.status);
  showMap();
}
function renderStatus() {
  var st = $("status"), w = $("warnings");
  document.body.setAttribute("data-status", S.status);
  st.textContent = "";
  w.textContent = "";
  if (S.status === "loading") { st.textContent = tr("searching"); return; }
  if (S.status === "error") {
    var msg = S.error.key ? tr(S.error.key) : tr("error");
    st.appendChild(el("p", { "class": "err", text: msg }, S.error.detail ? [el("span", { lang: "en", "class": "detail", "data-from": "api", text: S.error.detail })] : []));
    st.appendChild(el("button", { type: "button", "class": "btn btn-primary", text: tr("retry"), onclick: search }));
    return;
  }
  if (S.status !== "ok") return;
  if (S.offline) w.appendChild(offlineNotice());
  var feats = S.data.features;
  (S.data.warnings || []).forEach(function (x) {
    w.appendChild(el("div", { "class": "notice", "data-code": x.code }, [icon("i-warn"), el("span", { text: x[S.lang] || x.en || x.zh, lang: x[S.lang] ? null : dataLang(x.en || x.zh) })]));
  });
  alertBanner(feats.concat(alternativeFeatures().map(function (x) { return x[1]; }))).forEach(function (n) {
    w.appendChild(n);
  });
  if (feats.concat(alternativeFeatures().map(function (x) { return x[1]; })).some(function (f) { return f.properties.simulated; })) {
    w.appendChild(el("div", { "class": "notice demo" }, [icon("i-warn"), el("span", { text: tr("demoData") })]));
  }
  if (!feats.length) {
    st.appendChild(el("p", { text: tr("noResults") }));
    st.appendChild(el("p", { text: tr("noResultsHint") }));
    if (!S.includeClosed) {
      st.appendChild(el("button", { type: "button", "class": "btn", id: "showClosed", text: tr("showClosed"),
        onclick: function () { S.includeClosed = true; search(); } }));
    }
    return;
  }
  st.appendChild(el("div", { "class": "reshead" }, [
    el("h2", { text: tr(S.includeClosed ? "resultsWithClosed" : "results", { n: feats.length }) }),
    el("a", { "class": "btn maplink", href: "#mapWrap", text: tr("map") })]));
}
function renderList() {
  var list = $("list");
  list.textContent = "";
  renderAlternatives();
  if (S.status !== "ok") return;
  S.data.features.forEach(function (f, i) { list.appendChild(card(f, String(i + 1))); });
}

/* ---------- nothing matches: what the courier can do instead (the answer's "alternatives") ---------- */
var ALTERNATIVES = [
  { key: "opens_soonest", title: "altSoonest", line: "altSoonestLine", none: "altSoonestNone" },
  { key: "nearest_open_any", title: "altOpenAny", line: "altOpenAnyLine", none: "altOpenAnyNone" }
];
function alternativesShown() {
  var alt = S.status === "ok" && !S.data.features.length ? S.data.alternatives : null;
  return alt && typeof alt === "object" ? alt : null;
}
// [kind of alternative, feature] for each alternative the answer names.
function alternativeFeatures() {
  var alt = alternativesShown();
  return ALTERNATIVES.filter(function (a) { return alt && alt[a.key] && alt[a.key].properties; })
    .map(function (a) { return [a.key, alt[a.key]]; });
}
// When a site opens, said as a courier would: "05:00" today, "tomorrow 05:00", else "Wed 05:00".
function whenText(iso, atIso) {
  var n = bj(iso), at = bj(atIso);
  if (!n) return "";
  if (at && n.day === at.day) return n.hm;
  if (at && n.day === at.day + 1) return tr("tomorrowAt", { t: n.hm });
  return weekday(n.wd) + " " + n.hm;
}
function renderAlternatives() {
  var box = $("alternatives"), alt = alternativesShown();
  box.textContent = "";
  box.hidden = !alt;
  if (!alt) return;
  box.appendChild(el("h2", { text: tr("altHeading") }));
  ALTERNATIVES.forEach(function (a) {
    var f = alt[a.key], sec = el("section", { "class": "alt", "data-alt": a.key });
    sec.appendChild(el("h3", { "class": "alt-title", text: tr(a.title) }));
    if (!f || !f.properties) {
      sec.appendChild(el("p", { "class": "alt-none", text: tr(a.none) }));
    } else {
      var p = f.properties, name = (S.lang === "en" && p.name_en) || p.name_zh;
      sec.appendChild(el("p", { "class": "alt-line" }, fillNodes(tr(a.line), {
        name: el("strong", { "class": "alt-name", lang: dataLang(name), "data-from": "api", text: name }),
        time: whenText(p.next_open, p.state_at || (S.data.query && S.data.query.at)),
        dist: distanceText(p.distance_m), min: String(p.walk_minutes)
      })));
      var ul = el("ul", { "class": "cards" });
      ul.appendChild(card(f, null, "alt-"));
      sec.appendChild(ul);
    }
    box.appendChild(sec);
  });
}

// When the site's details were last checked (a Beijing date), with a plain warning when that is long ago or never.
function freshness(p) {
  var v = bj(p.verified_at), d = v && new Date(v.day * 86400000);
  var date = d && d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
  if (!p.stale && date) return el("p", { "class": "verified", text: tr("verifiedOn", { d: date }) });
  return el("p", { "class": "verified stale", "data-stale": "true" },
    [icon("i-warn"), el("span", { text: date ? tr("verifiedLongAgo", { d: date }) : tr("neverVerified") })]);
}

// What the site's operator posted now (full, seats free, closed now) and couriers' "may be closed" marks, each with
// its time; null when there is nothing to say. Expired states are not in the answer: the API leaves them out.
function liveBadges(p) {
  var box = el("div", { "class": "live" }), ls = p.live_status, mb = p.may_be_closed;
  if (ls && (ls.state === "full" || ls.state === "closed_now" || typeof ls.seats_free === "number")) {
    var key = ls.state === "full" ? "liveFull" : ls.state === "closed_now" ? "liveClosedNow"
      : ls.seats_free === 1 ? "liveSeatOne" : "liveSeats";
    var posted = bj(ls.posted_at);
    box.appendChild(el("p", { "class": "badge live-" + ls.state, "data-live": ls.state }, [
      el("strong", { text: tr(key, { n: ls.seats_free }) }),
      posted ? el("span", { "class": "posted", text: " · " + tr("livePosted", { t: posted.hm }) }) : null]));
  }
  if (mb && typeof mb.reports === "number") {
    var since = bj(mb.since);
    box.appendChild(el("p", { "class": "badge may-be-closed", "data-live": "may_be_closed" }, [icon("i-warn"),
      el("strong", { text: tr("mayBeClosed") }),
      el("span", { "class": "posted", text: " · " + tr("mayBeClosedWhy", { n: mb.reports, t: since ? since.hm : "" }) })]));
  }
  return box.childNodes.length ? box : null;
}

// A site's card; mark is its number in the list (null: none), idPrefix keeps ids apart ("site-" by default).
function card(f, mark, idPrefix) {
  var p = f.properties, lon = f.geometry.coordinates[0], lat = f.geometry.coordinates[1];
  var name = (S.lang === "en" && p.name_en) || p.name_zh;
  var st = stateOf(p);
  var li = el("li", { "class": "card", id: (idPrefix || "site-") + p.id, "data-id": p.id, "data-kind": p.kind,
    "data-amenities": (p.amenities || []).join(" ") });
  kindColour(li, p.kind);
  li.appendChild(el("div", { "class": "card-head" }, [mark ? el("span", { "class": "num", text: mark }) : null, icon("k-" + p.kind),
    el("span", { "class": "kind", text: kindLabel(p.kind, p) })]));
  li.appendChild(el("h3", { "class": "name", lang: dataLang(name), "data-from": "api", text: name }));
  li.appendChild(el("p", { "class": "meta" }, [icon("i-walk"), el("strong", { "class": "dist", text: distanceText(p.distance_m) }),
    el("span", { "class": "walk", text: "· " + tr("walk", { n: p.walk_minutes }) })]));
  li.appendChild(el("p", { "class": "state " + st.cls, text: st.text }));
  if (p.is_open && p.open_reason === "alert_hours") {
    li.appendChild(el("p", { "class": "badge alert-hours", "data-open-reason": "alert_hours" },
      [el("strong", { text: tr("alertHours") })]));
  }
  li.appendChild(freshness(p));
  var live = liveBadges(p);
  if (live) li.appendChild(live);
  var ul = el("ul", { "class": "amen" }), order = Object.keys(vocab("amenities"));
  function rank(a) { var w = S.amenities.indexOf(a) >= 0 ? 0 : 100, i = order.indexOf(a); return w + (i < 0 ? 99 : i); }
  (p.amenities || []).slice().sort(function (a, b) { return rank(a) - rank(b); }).forEach(function (a) {
    ul.appendChild(el("li", { "data-amenity": a, "class": S.amenities.indexOf(a) >= 0 ? "want" : null }, [amenityIcon(a), amenityLabel(a, p)]));
  });
  li.appendChild(ul);
  if (p.address) li.appendChild(el("p", { "class": "addr", lang: dataLang(p.address), "data-from": "api", text: p.address }));
  if (typeof p.unresolved_reports === "number" && p.unresolved_reports > 0) {
    li.appendChild(el("p", { "class": "reports" }, [icon("i-warn"), el("span", { text: tr(p.unresolved_reports === 1 ? "reportsOpenOne" : "reportsOpen", { n: p.unresolved_reports }) })]));
  }
  var acts = el("div", { "class": "actions" });
  if (p.phone) {
    acts.appendChild(el("a", { "class": "btn btn-primary wide call", href: "tel:" + p.phone.replace(/[^\d+]/g, "") },
      [icon("i-phone"), tr("call", { phone: p.phone })]));
  }
  acts.appendChild(el("p", { "class": "navlbl", text: tr("navigate") }));
  var nav = el("div", { "class": "navrow" });
  navLinks(lon, lat, p.name_zh, name).forEach(function (n) {
    nav.appendChild(el("a", { "class": "btn nav nav-" + n[0], "data-app": n[0], href: n[1], target: "_blank", rel: "noopener",
      "aria-label": tr("openIn", { app: tr(n[0] + "Full") }), text: tr(n[0]) }));
  });
  acts.appendChild(nav);
  var box = el("div", { "class": "report-box", role: "status", hidden: true });
  acts.appendChild(el("button", { type: "button", "class": "btn wide report", text: tr("report"), "aria-expanded": "false",
    onclick: function (ev) { startReport(p, box, ev.currentTarget); } }));
  acts.appendChild(box);
  li.appendChild(acts);
  return li;
}

/* ---------- "report a problem": shown when the API offers POST /api/v1/sites/{id}/reports ---------- */
var reportCap = null;
function canReport() {
  if (!reportCap) {
    reportCap = fetchJSON("/api/v1/openapi.json").catch(function (e) {
      if (e.status === undefined) reportCap = null; // no answer: ask again next time
      return null;
    }).then(function (doc) {
      return Object.keys((doc && doc.paths) || {}).some(function (k) { return REPORTS_PATH.test(k) && doc.paths[k].post; });
    }).catch(function () { reportCap = null; return false; });
  }
  return reportCap;
}
function reportMsg(box, key, detail) {
  box.textContent = "";
  box.appendChild(el("p", { "class": "report-msg", "data-msg": key, text: tr(key) }, detail ? [" ", el("span", { lang: "en", "data-from": "api", text: detail })] : []));
}
function startReport(p, box, btn) {
  if (!box.hidden && box.childNodes.length) { box.hidden = true; btn.setAttribute("aria-expanded", "false"); return; }
  box.hidden = false;
  btn.setAttribute("aria-expanded", "true");
  reportMsg(box, "reportChecking");
  canReport().then(function (ok) {
    if (!ok) { reportMsg(box, "reportUnavailable"); return; }
    box.textContent = "";
    box.appendChild(el("p", { text: tr("reportWhat") }));
    box.appendChild(el("button", { type: "button", "class": "btn", "data-report": "closed_on_arrival", text: tr("reportClosed"),
      onclick: function () { sendReport(p, box, { type: "closed_on_arrival" }); } }));
    box.appendChild(el("button", { type: "button", "class": "btn", "data-report": "amenity_missing", text: tr("reportAmenity"),
      onclick: function () {
        box.textContent = "";
        box.appendChild(el("p", { text: tr("reportWhich") }));
        var chips = el("div", { "class": "chips" });
        (p.amenities || []).forEach(function (a) {
          chips.appendChild(el("button", { type: "button", "class": "chip", "data-amenity": a,
            onclick: function () { sendReport(p, box, { type: "amenity_missing", amenity: a }); } }, [amenityIcon(a), amenityLabel(a, p)]));
        });
        box.appendChild(chips);
      } }));
  });
}
function sendReport(p, box, body) {
  body.observed_at = new Date().toISOString();
  body.lang = S.lang;
  reportMsg(box, "reportChecking");
  fetchJSON("/api/v1/sites/" + encodeURIComponent(p.id) + "/reports", { method: "POST", json: body }).then(function () {
    reportMsg(box, "reportThanks");
  }, function (e) {
    if (e.status === 404 || e.status === 405 || e.status === 501) reportMsg(box, "reportUnavailable");
    else reportMsg(box, "reportFailed", e.detail);
  });
}

/* ---------- map: progressive; shown with the first answer (or to pick a point), never blocks the list ---------- */
// The server says which tiles to draw on and in which datum their streets are (GET /api/v1/basemap). State and
// the API stay WGS-84; only what is drawn is converted, so markers line up with GCJ-02 (Amap) tiles too.
var map = null, layer = null, tiles = null, zoom = null, mapRequested = false, tileOk = false, base = null;
var attribution = "", onScreen = false, probing = false;
function toMap(lat, lon) {
  if (!base || base.datum !== "gcj02") return [lat, lon];
  var g = Datum.wgs84ToGcj02(lon, lat);
  return [g[1], g[0]];
}
function fromMap(latlng) {
  if (!base || base.datum !== "gcj02") return { lat: latlng.lat, lon: latlng.lng };
  var w = Datum.gcj02ToWgs84(latlng.lng, latlng.lat);
  return { lat: w[1], lon: w[0] };
}
function mapNote(key) {
  $("mapNote").hidden = false; $("mapNote").textContent = tr(key); $("mapNote").setAttribute("data-i18n", key);
}
// The map's box appears below the answer; Leaflet (150 KB) is fetched then, the tiles once the box is on screen.
function showMap() {
  $("mapWrap").hidden = false;
  loadMap();
}
function loadMap() {
  if (mapRequested) return;
  mapRequested = true;
  var css = el("link", { rel: "stylesheet", href: "/static/vendor/leaflet/leaflet.css" });
  var mine = document.querySelector('link[href*="/css/app.css"]');
  document.head.insertBefore(css, mine);
  // Without the base map setting there are no tiles to draw on: the markers still show, in WGS-84.
  var spec = fetchJSON("/api/v1/basemap").then(function (b) { return b.tiles; }, function () { return null; });
  var s = el("script", { src: "/static/vendor/leaflet/leaflet.js", async: true });
  s.onload = function () { spec.then(initMap); };
  s.onerror = function () { mapNote("mapFailed"); };
  document.head.appendChild(s);
}
function attributionHtml() {
  if (!base) return "";
  var text = S.lang === "en" ? base.attribution.en : base.attribution.zh;
  var a = el(base.attribution_url ? "a" : "span");
  if (base.attribution_url) a.setAttribute("href", base.attribution_url);
  // Brand names keep their script ("OpenStreetMap 贡献者"): each run of Latin or Chinese text says its language.
  (text.match(/[\u3400-\u9fff\uff00-\uffef]+|[^\u3400-\u9fff\uff00-\uffef]+/g) || []).forEach(function (run) {
    a.appendChild(run.trim() ? el("span", { text: run, lang: dataLang(run) }) : document.createTextNode(run));
  });
  return "© " + a.outerHTML; // built as DOM text: the setting's words are never markup
}
function mapTexts() {
  if (!map) return;
  if (zoom) zoom.remove();
  zoom = L.control.zoom({ zoomInTitle: tr("zoomIn"), zoomOutTitle: tr("zoomOut") }).addTo(map);
  if (!base) return;
  // The tiles' credit is the map's, shown whether or not the tiles could load.
  if (attribution) map.attributionControl.removeAttribution(attribution);
  attribution = attributionHtml();
  map.attributionControl.addAttribution(attribution);
}
/* Tiles, quietly: nothing is asked of the tile server until the map is on screen, and then one tile first. If the
   server cannot be reached (no signal, a filtered host) that one request fails, the note says the list still
   works, and no other tile is asked for until the phone is back online; the markers are drawn anyway. */
function probeTile() {
  var c = map.getCenter(), z = map.getZoom(), p = map.project(c, z).divideBy(256).floor(), url;
  try {
    url = L.Util.template(base.url, { s: (base.subdomains || "a")[0], z: z, x: p.x, y: p.y, r: "" });
  } catch (e) { return Promise.resolve(true); } // a template with other placeholders: let Leaflet fill it
  return new Promise(function (resolve) {
    var img = new Image();
    img.onload = function () { resolve(true); };
    img.onerror = function () { resolve(false); };
    img.src = url;
  });
}
function startTiles() {
  if (!map || !base || tiles || probing || !onScreen) return;
  probing = true;
  probeTile().then(function (ok) {
    probing = false;
    if (!ok) { mapNote("mapFailed"); document.body.setAttribute("data-tiles", "failed"); return; }
    tiles = L.tileLayer(base.url, { maxZoom: base.max_zoom, subdomains: base.subdomains }).addTo(map);
    tiles.on("tileload", function () { tileOk = true; $("mapNote").hidden = true; document.body.setAttribute("data-tiles", "ok"); });
    tiles.on("tileerror", function () { if (!tileOk) mapNote("mapFailed"); });
  });
}
function watchMap() {
  if (!("IntersectionObserver" in window)) { onScreen = true; startTiles(); return; }
  new IntersectionObserver(function (entries) {
    onScreen = entries[entries.length - 1].isIntersecting;
    startTiles();
  }, { rootMargin: "200px 0px" }).observe($("map"));
  window.addEventListener("online", startTiles);
}
function initMap(spec) {
  var L = window.L;
  if (!L || map) return;
  base = spec;
  map = L.map("map", { zoomControl: false });
  layer = L.layerGroup().addTo(map);
  document.body.setAttribute("data-map-datum", base ? base.datum : "wgs84");
  drawMap(); // set the view before any tile is asked for
  if (!S.origin) { var c = areaView(); map.setView(toMap(c[0], c[1]), 12); }
  map.attributionControl.setPrefix('<a href="https://leafletjs.com" lang="en">Leaflet</a>');
  mapTexts();
  if (base) watchMap(); else $("mapNote").hidden = true;
  map.on("click", function (e) {
    if (S.picking) { var w = fromMap(e.latlng); setOrigin({ src: "map", lat: w.lat, lon: w.lon }); }
  });
  api.map = map; // for tests and embedding pages: the Leaflet map itself
  document.body.setAttribute("data-map", "ready");
}
function pin(cls, text, kind) {
  var d = el("div", { "class": "pin " + cls, text: text });
  kindColour(d, kind || "none");
  return L.divIcon({ className: "", iconSize: [40, 40], html: d }); // an element per marker: Leaflet moves it in
}
// Each marker says where it is drawn (in the tiles' datum), so that tests and assistive tools can check it.
function mark(m) {
  var e = m.getElement(), ll = m.getLatLng();
  if (e) { e.setAttribute("data-lat", ll.lat.toFixed(9)); e.setAttribute("data-lon", ll.lng.toFixed(9)); }
  return e;
}
function drawMap() {
  if (!map) return;
  layer.clearLayers();
  var pts = [], feats = S.status === "ok" ? S.data.features : [];
  if (S.origin) pts.push(toMap(S.origin.lat, S.origin.lon));
  feats.forEach(function (f) { pts.push(toMap(f.geometry.coordinates[1], f.geometry.coordinates[0])); });
  if (pts.length > 1) map.fitBounds(pts, { padding: [30, 30], maxZoom: 17 });
  else if (pts.length) map.setView(pts[0], 15);
  if (S.origin) {
    mark(L.marker(pts[0], { icon: pin("me", "★"), keyboard: false, title: tr("youAreHere"), zIndexOffset: -1000 }).addTo(layer));
  }
  feats.forEach(function (f, i) {
    var p = f.properties, name = (S.lang === "en" && p.name_en) || p.name_zh;
    var m = L.marker(pts[S.origin ? i + 1 : i], { icon: pin("", String(i + 1), p.kind), title: name })
      .on("click", function () { highlight(p.id); }).addTo(layer);
    var e = mark(m);
    if (e) { e.setAttribute("data-from", "api"); e.setAttribute("data-site", p.id); e.setAttribute("lang", dataLang(name)); }
  });
}
function highlight(id) {
  var c = document.getElementById("site-" + id);
  if (!c) return;
  Array.prototype.forEach.call(document.querySelectorAll(".card.hl"), function (x) { x.classList.remove("hl"); });
  c.classList.add("hl");
  c.scrollIntoView({ behavior: "smooth", block: "start" });
}
function renderPick() {
  $("pickBanner").hidden = !S.picking;
  $("map").classList.toggle("picking", S.picking);
}

/* ---------- language ---------- */
function applyLang() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.title = tr("pageTitle");
  Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (n) { n.textContent = tr(n.getAttribute("data-i18n")); });
  var lb = $("lang");
  lb.textContent = tr("langButton");
  lb.setAttribute("lang", S.lang === "zh" ? "en" : "zh");
  lb.setAttribute("aria-label", tr("langButtonLabel"));
  $("toggleChooser").textContent = tr(S.chooser ? "hideChooser" : "choosePlace");
  renderLoc();
  renderLandmarks();
  renderDistricts();
  renderFilters();
  renderStatus();
  renderList();
  mapTexts();
  drawMap();
}

/* ---------- wiring ---------- */
function init() {
  $("lang").addEventListener("click", function () { S.lang = S.lang === "zh" ? "en" : "zh"; save("lang", S.lang); applyLang(); });
  $("useGps").addEventListener("click", locate);
  $("toggleChooser").addEventListener("click", function () { openChooser(!S.chooser); });
  $("district").addEventListener("change", function (e) {
    var d = (S.districts || []).filter(function (x) { return x.adcode === e.target.value; })[0];
    if (d) setOrigin({ src: "district", id: d.adcode, lon: d.label_point[0], lat: d.label_point[1] });
  });
  $("pickMap").addEventListener("click", function () {
    S.picking = true;
    renderPick();
    showMap();
    $("mapWrap").scrollIntoView({ behavior: "smooth", block: "start" });
  });
  $("pickCancel").addEventListener("click", function () { S.picking = false; renderPick(); });
  $("arrive").addEventListener("change", function (e) { S.arrive = e.target.checked; S.includeClosed = false; savePrefs(); search(); });
  $("filterBox").addEventListener("toggle", function () { if ($("filterBox").open) ensureVocab(); });
  // Back online: fresh results by themselves. Offline: the page shell comes from the service worker.
  window.addEventListener("online", function () { if (S.offline || S.status === "error") search(); });
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(function () {});
  ensureVocab();
  applyLang();
  startLocation();
}
init();
