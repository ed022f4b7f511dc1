// bench/e2e.py: one fetch POST per event to the sink in settings.url (the event as JSON).
// Runs unchanged in segfuncd (plugins_dir) and under Node (bench/node_harness.mjs).
async function onTrack(event, settings) {
  const res = await fetch(settings.url, {
    method: "post",
    body: JSON.stringify(event),
    headers: { "Content-Type": "application/json", "Authorization": "Basic " + btoa(`${settings.apiKey}:`) },
  })
  if (res.status >= 500) throw new RetryError(`sink answered ${res.status}`)
  return res.status
}
