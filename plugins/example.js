// An example destination function: forwards track and identify events as JSON.
// Each handler is `async (event, settings)`; return to deliver, throw to say why not.
//
// Configure it in segfuncd.toml:
//   [functions.example]
//   settings = { endpoint = "https://example.com/hook", apiKey = "..." }
// Without an endpoint it only logs, so it runs on built-in defaults too.

async function onTrack(event, settings) {
  console.log(`track "${event.event}" from ${event.userId || event.anonymousId}`)
  return forward(event, settings)
}

async function onIdentify(event, settings) {
  if (!event.traits || !event.traits.email) {
    throw new InvalidEventPayload("identify needs traits.email")
  }
  return forward(event, settings)
}

async function forward(event, settings) {
  if (!settings.endpoint) {
    return { forwarded: false, hint: "set functions.example.settings.endpoint" }
  }
  const res = await fetch(settings.endpoint, {
    method: "post",
    headers: {
      "Content-Type": "application/json",
      Authorization: "Basic " + btoa(`${settings.apiKey || ""}:`),
    },
    body: JSON.stringify(event),
  })
  if (res.status === 429 || res.status >= 500) {
    throw new RetryError(`endpoint answered ${res.status}`) // retried with backoff
  }
  if (!res.ok) {
    throw new ValidationError(`endpoint refused the event: ${res.status}`) // discarded
  }
  return { forwarded: true, status: res.status }
}
