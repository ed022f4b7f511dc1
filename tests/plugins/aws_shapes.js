// Makes each call of tests/fixtures/aws.json (settings.cases) against settings.config, one
// after another; the sink records the requests. Answers are not the point: errors are kept.
function revive(v) {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    if (v.__buffer !== undefined) return Buffer.from(v.__buffer, "base64");
    if (v.__date !== undefined) return new Date(v.__date);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]));
  }
  return Array.isArray(v) ? v.map(revive) : v;
}
async function onTrack(event, settings) {
  const out = [];
  for (const c of settings.cases) {
    try { await new AWS[c.service](settings.config)[c.op](revive(c.params)).promise(); out.push("ok"); }
    catch (e) { out.push(e.code); }
  }
  return out;
}
