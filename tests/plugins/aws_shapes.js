// Makes each call of tests/fixtures/aws.json (settings.cases) against settings.config, one
// after another; the sink records the requests. Answers are not the point: errors are kept.
function revive(v, client) {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    if (v.__buffer !== undefined) return Buffer.from(v.__buffer, "base64");
    if (v.__date !== undefined) return new Date(v.__date);
    if (v.__set !== undefined) return client.createSet(v.__set);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x, client)]));
  }
  return Array.isArray(v) ? v.map((x) => revive(x, client)) : v;
}
async function onTrack(event, settings) {
  const out = [];
  for (const c of settings.cases) {
    const client = c.service === "DynamoDB.DocumentClient" ? new AWS.DynamoDB.DocumentClient(settings.config) : new AWS[c.service](settings.config);
    try { await client[c.op](revive(c.params, client)).promise(); out.push("ok"); }
    catch (e) { out.push(e.code); }
  }
  return out;
}
