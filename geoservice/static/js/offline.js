/* The couriers' page offline (an ES module): the last answer kept on the phone, and its open states recomputed
   for the current time from each site's open intervals (asked for with intervals_hours). Storage is bounded:
   one answer, at most MAX_BYTES. */
export var HORIZON_HOURS = 24;
var MAX_BYTES = 256 * 1024;

// Keep ``body`` (a nearest answer with open_intervals) as the last one; false when it is too big to keep.
export function keep(storageSet, body, savedAt) {
  var text = JSON.stringify({ saved_at: savedAt, body: body });
  if (text.length > MAX_BYTES) return false;
  return storageSet(text);
}

// The kept answer, or null when there is none or it cannot be read.
export function kept(storageGet) {
  try {
    var x = JSON.parse(storageGet() || "null");
    return x && typeof x.saved_at === "number" && x.body && Array.isArray(x.body.features) ? x : null;
  } catch (e) { return null; }
}

function iso(ms) { return new Date(ms).toISOString(); }

// A feature's properties with is_open / open_until / next_open recomputed for ``now`` (ms) from its intervals.
// Past the horizon the intervals say nothing: the state is unknown (state_unknown), never guessed.
export function restate(props, horizonEnd, now) {
  var p = Object.assign({}, props), spans = (props.open_intervals || []).map(function (s) {
    return [Date.parse(s.start), Date.parse(s.end)];
  });
  p.state_at = iso(now);
  p.open_all_week = false;
  if (!(now < horizonEnd) || !Array.isArray(props.open_intervals)) {
    p.state_unknown = true; p.is_open = false; p.open_until = null; p.next_open = null;
    return p;
  }
  var cur = spans.filter(function (s) { return s[0] <= now && now < s[1]; })[0];
  var next = spans.filter(function (s) { return s[0] > now; })[0];
  p.is_open = !!cur;
  // An interval that runs to the horizon may go on: "open", without a closing time.
  p.open_until = cur && cur[1] < horizonEnd ? iso(cur[1]) : null;
  p.next_open = !cur && next ? iso(next[0]) : null;
  return p;
}

// The kept answer as it stands at ``now``: every feature (results and alternatives) restated.
export function replay(saved, now) {
  var b = saved.body, q = b.query || {}, at = Date.parse(q.at) || saved.saved_at;
  var horizonEnd = at + (q.intervals_hours || 0) * 3600000;
  function one(f) { return f && Object.assign({}, f, { properties: restate(f.properties, horizonEnd, now) }); }
  var alt = b.alternatives && { opens_soonest: one(b.alternatives.opens_soonest),
    nearest_open_any: one(b.alternatives.nearest_open_any) };
  return Object.assign({}, b, { features: b.features.map(one), alternatives: alt, warnings: b.warnings || [] });
}
