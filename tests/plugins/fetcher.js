// fetch semantics: egress, errors, user agent, non-2xx.
async function onTrack(event, settings) {
  const res = await fetch(event.properties.url, event.properties.init || {})
  return { status: res.status, ok: res.ok, body: await res.text(), ua: res.headers.get("x-seen-ua") }
}
