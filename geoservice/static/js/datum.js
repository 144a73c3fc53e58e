/* Datum conversion for the navigation links and the map: WGS-84 -> GCJ-02 (Amap) -> BD-09 (Baidu), and
   GCJ-02 -> WGS-84 for a point picked on GCJ-02 tiles, an ES module. Same published algorithms as the server's
   geoservice/geo.py (from_wgs84, to_wgs84); checked against it by tests/browser. All functions take and return
   [lon, lat] in degrees. */
var PI = Math.PI, A = 6378245.0, EE = 0.00669342162296594323, X_PI = PI * 3000.0 / 180.0;

function outOfChina(lon, lat) {
  return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
}
function tLat(x, y) {
  var r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
  r += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
  r += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
  return r;
}
function tLon(x, y) {
  var r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
  r += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
  r += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
  return r;
}
export function wgs84ToGcj02(lon, lat) {
  if (outOfChina(lon, lat)) return [lon, lat];
  var dLat = tLat(lon - 105.0, lat - 35.0), dLon = tLon(lon - 105.0, lat - 35.0);
  var radLat = lat / 180.0 * PI, magic = 1 - EE * Math.sin(radLat) * Math.sin(radLat), sq = Math.sqrt(magic);
  dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sq) * PI);
  dLon = (dLon * 180.0) / (A / sq * Math.cos(radLat) * PI);
  return [lon + dLon, lat + dLat];
}
export function gcj02ToBd09(lon, lat) {
  var z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * X_PI);
  var th = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * X_PI);
  return [z * Math.cos(th) + 0.0065, z * Math.sin(th) + 0.006];
}
export function wgs84ToBd09(lon, lat) {
  var g = wgs84ToGcj02(lon, lat);
  return gcj02ToBd09(g[0], g[1]);
}
// No closed form: fixed-point iteration on the forward offset, as geo.py's _invert (tolerance 1e-9 degrees).
export function gcj02ToWgs84(lon, lat) {
  var x = lon, y = lat;
  for (var i = 0; i < 30; i++) {
    var f = wgs84ToGcj02(x, y), dx = f[0] - lon, dy = f[1] - lat;
    x -= dx; y -= dy;
    if (Math.max(Math.abs(dx), Math.abs(dy)) < 1e-9) break;
  }
  return [x, y];
}
