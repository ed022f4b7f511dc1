// bench (b): one fetch POST per event to the sink in settings.url.
async function onTrack(event, settings) {
  const res = await fetch(settings.url, {
    method: "post",
    body: JSON.stringify(event),
    headers: { "Content-Type": "application/json", "Authorization": "Basic " + btoa(`${settings.apiKey}:`) },
  })
  return res.status
}
