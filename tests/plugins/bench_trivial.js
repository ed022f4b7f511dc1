// bench (a): a trivial handler.
async function onTrack(event, settings) {
  return { n: event.properties.n }
}
