/* What both pages share (the couriers' index.html and the operators' operator.html): DOM helpers, the translator,
   storage that survives private mode, JSON fetches with problem+json errors, and the vocabulary of data labels.
   A plain ES module: no build step, no CDN; the pages load it from 'self' under their Content-Security-Policy. */

/** The element with this id. */
export function $(id) { return document.getElementById(id); }

/** A new element. attrs: "text" sets textContent (never HTML), "on<event>" adds a listener (functions only),
    anything else is an attribute (true = present, null/undefined/false = absent). kids: nodes, or strings that
    become text nodes. Nothing here ever parses markup: text from the API or an operator stays text. */
export function el(tag, attrs, kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") n.textContent = v;
    else if (k.slice(0, 2) === "on") { if (typeof v === "function") n.addEventListener(k.slice(2), v); }
    else if (k === "html" || k === "innerHTML" || k === "srcdoc") throw new Error("el(): no markup, use text");
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids || []) {
    if (c === null || c === undefined || c === false || c === "") continue;
    n.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return n;
}

/** Nodes for a template such as "{name}, opens {time}": the text between placeholders becomes text nodes, each
    {key} becomes vars[key] (a node, or a string as a text node); an unknown placeholder stays as written. The
    template is split before anything is put in, so a value is never read as a template, nor as markup. */
export function fillNodes(template, vars) {
  const out = [];
  String(template).split(/(\{\w+\})/).forEach((part) => {
    const m = /^\{(\w+)\}$/.exec(part);
    const v = m && vars && m[1] in vars ? vars[m[1]] : part;
    if (v === null || v === undefined || v === "") return;
    out.push(typeof v === "string" || typeof v === "number" ? document.createTextNode(String(v)) : v);
  });
  return out;
}

/** A translator over dict = {zh: {...}, en: {...}}: t(key, vars) in `lang` (a string, or a function returning the
    page's current language), falling back to English, then to the key itself. "{name}" is replaced by vars.name;
    an unknown placeholder is left as it is. */
export function makeT(dict, lang) {
  return function t(key, vars) {
    const l = typeof lang === "function" ? lang() : lang;
    let s = dict[l] && dict[l][key];
    if (s === undefined) s = dict.en && dict.en[key];
    if (s === undefined) return key;
    return String(s).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
  };
}

/** The language a page starts in: a remembered choice, else the browser's (zh* gives Chinese, anything else
    English). */
export function initialLang(remembered) {
  if (remembered === "zh" || remembered === "en") return remembered;
  return /^zh/i.test(navigator.language || "") ? "zh" : "en";
}

/** "zh" for text with CJK characters, else "en": the lang attribute for text that comes from data. */
export function dataLang(s) { return /[\u3400-\u9fff]/.test(s || "") ? "zh" : "en"; }

/* ---------- storage: private mode, a full quota or disabled storage must never break a page ---------- */
function area(which) {
  try { return which === "session" ? window.sessionStorage : window.localStorage; } catch (e) { return null; }
}
/** The string stored under key in "local" or "session" storage, or null. */
export function storageGet(which, key) {
  try { const a = area(which); return a ? a.getItem(key) : null; } catch (e) { return null; }
}
/** Store a string (null removes the key). Returns whether it worked. */
export function storageSet(which, key, value) {
  try {
    const a = area(which);
    if (!a) return false;
    if (value === null || value === undefined) a.removeItem(key); else a.setItem(key, value);
    return true;
  } catch (e) { return false; }
}
/** A JSON value from storage, or null when it is missing or unreadable. */
export function storageGetJSON(which, key) {
  try { return JSON.parse(storageGet(which, key)); } catch (e) { return null; }
}
/** Store a value as JSON. */
export function storageSetJSON(which, key, value) { return storageSet(which, key, JSON.stringify(value)); }

/* ---------- fetch ---------- */
/** fetch() for a JSON API. opts: method, headers, json (a body, sent as application/json), signal, cache, and
    full (resolve {body, status, etag, headers} instead of the body). A non-2xx answer rejects with an Error
    carrying status, type, title, detail and problems (the problem+json "errors" list) and body; its message is
    the detail, else the title, else "HTTP <status>". A network failure or abort rejects with fetch's own error
    (no status). An empty or non-JSON body is null. */
export function fetchJSON(url, opts) {
  const o = opts || {};
  const headers = Object.assign({ Accept: "application/json, application/problem+json" }, o.headers || {});
  const init = { method: o.method || "GET", headers: headers };
  if (o.signal) init.signal = o.signal;
  if (o.cache) init.cache = o.cache;
  if (o.json !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(o.json); }
  return fetch(url, init).then((r) => r.text().then((text) => {
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!r.ok) {
      const b = body && typeof body === "object" ? body : {};
      const err = new Error(b.detail || b.title || "HTTP " + r.status);
      err.status = r.status;
      err.type = b.type || null;
      err.title = b.title || null;
      err.detail = b.detail || null;
      err.problems = Array.isArray(b.errors) ? b.errors : [];
      err.retryAfter = r.headers.get("Retry-After");
      err.body = body;
      throw err;
    }
    return o.full ? { body: body, status: r.status, etag: r.headers.get("ETag"), headers: r.headers } : body;
  }));
}

/* ---------- the vocabulary: every data label (kinds, amenities, weekdays) comes from the API ---------- */
/** OpenStreetMap weekday tokens, Monday first: the keys of the vocabulary's weekdays. */
export const WEEKDAY_TOKENS = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];

let vocabulary = null;
/** GET /api/v1/vocabulary, once per page: {kinds, amenities, weekdays}, each {code: {zh, en}} in the model's
    display order. A failed request is forgotten, so the next call asks again. */
export function loadVocabulary() {
  if (!vocabulary) {
    vocabulary = fetchJSON("/api/v1/vocabulary").then((v) => {
      if (!v || typeof v !== "object") throw new Error("no vocabulary");
      return { kinds: v.kinds || {}, amenities: v.amenities || {}, weekdays: v.weekdays || {},
        alert_types: v.alert_types || {}, alert_levels: v.alert_levels || {}, service_area: v.service_area || null };
    });
    vocabulary.catch(() => { vocabulary = null; });
  }
  return vocabulary;
}

/** The label of a vocabulary entry ({zh, en}) in lang, else in the other language, else fallback (e.g. the code). */
export function label(entry, lang, fallback) {
  if (entry && typeof entry === "object") {
    const s = entry[lang] || entry.en || entry.zh;
    if (s) return String(s);
  }
  return fallback === undefined ? "" : String(fallback);
}

/** A weekday's label: day is 0-6 from Monday (a "Mo".."Su" token also works). */
export function weekdayLabel(vocab, day, lang) {
  const token = typeof day === "number" ? WEEKDAY_TOKENS[((day % 7) + 7) % 7] : day;
  return label(vocab && vocab.weekdays && vocab.weekdays[token], lang, token);
}
