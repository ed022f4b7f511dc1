async function onTrack(event, settings) {
  const t0 = Date.now()
  const [a, b] = await Promise.all([
    fetch(settings.url + "/slow/a"),
    fetch(settings.url + "/slow/b"),
  ])
  return { statuses: [a.status, b.status], ms: Date.now() - t0 }
}
