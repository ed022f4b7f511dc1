async function onBatch(events, settings) {
  if (settings.fail) throw new RetryError("whole batch failed")
  return events.map((e) => ({ status: e.properties.status, errormessage: "status " + e.properties.status }))
}

async function onTrack(event) {
  return "single"
}
