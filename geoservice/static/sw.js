/* The couriers' page's service worker: the page opens with no signal (underground garages, malls, lift lobbies).
   Served at /sw.js by geoservice/api/offline.py, which puts in front of this file the shell's version (a hash of
   its files: a new release installs a new cache and drops the old one), the shell's URLs and the tile cap:
     var VERSION = "...", SHELL = [...], CONFIG = [...], MAX_TILES = n;
   - the app shell: cache first (a versioned cache, filled when the worker installs);
   - the vocabulary and base map: network first, the last copy when offline;
   - map tiles (images from the tile server): cache first, at most MAX_TILES kept, oldest dropped first;
   - everything else (the API's answers): the network only. The page keeps its last results itself. */
/* global VERSION, SHELL, CONFIG, MAX_TILES */
var SHELL_CACHE = "gs-shell-" + VERSION, DATA_CACHE = "gs-data", TILE_CACHE = "gs-tiles";

self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(SHELL_CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () {
    return self.skipWaiting();
  }));
});
self.addEventListener("activate", function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf("gs-shell-") === 0 && k !== SHELL_CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

function shell(req) {
  return caches.open(SHELL_CACHE).then(function (c) {
    return c.match(req, { ignoreSearch: true }).then(function (hit) { return hit || fetch(req); });
  });
}
function networkFirst(req) {
  return fetch(req).then(function (resp) {
    if (resp.ok) { var copy = resp.clone(); caches.open(DATA_CACHE).then(function (c) { c.put(req, copy); }); }
    return resp;
  }, function () {
    return caches.open(DATA_CACHE).then(function (c) { return c.match(req); }).then(function (hit) {
      return hit || Response.error();
    });
  });
}
function trim(c) {
  return c.keys().then(function (keys) {
    return Promise.all(keys.slice(0, Math.max(0, keys.length - MAX_TILES)).map(function (k) { return c.delete(k); }));
  });
}
function tile(req) {
  return caches.open(TILE_CACHE).then(function (c) {
    return c.match(req).then(function (hit) {
      if (hit) return hit;
      return fetch(req).then(function (resp) {
        // Tiles are cross-origin images: opaque (status 0) when fine; an error page is not kept.
        if (resp.ok || resp.type === "opaque") { c.put(req, resp.clone()).then(function () { return trim(c); }); }
        return resp;
      });
    });
  });
}

self.addEventListener("fetch", function (e) {
  var req = e.request, url = new URL(req.url);
  if (req.method !== "GET") return;
  if (url.origin !== self.location.origin) {
    if (req.destination === "image") e.respondWith(tile(req));
    return;
  }
  if (req.mode === "navigate" && url.pathname === "/") { e.respondWith(shell(new Request("/"))); return; }
  if (SHELL.indexOf(url.pathname) >= 0) { e.respondWith(shell(req)); return; }
  if (CONFIG.indexOf(url.pathname) >= 0) { e.respondWith(networkFirst(req)); return; }
});
