// One handler per row of DESIGN.md's outcome table; event.action picks the behaviour.
counter = 0  // sloppy mode: an undeclared assignment works, and persists per version

async function onTrack(event, settings) {
  counter++
  const p = event.properties || {}
  switch (p.action) {
    case "return": return { counter: counter, event: event.properties }
    case "retry": throw new RetryError("try later")
    case "invalid": throw new InvalidEventPayload("bad payload")
    case "validation": throw new ValidationError("bad settings")
    case "unsupported": throw new EventNotSupported("nope")
    case "bug": return event.missing.field
    case "throw": throw new Error("plain error")
    case "mutate": event.properties.touched = true; return event.properties
    case "big": return "x".repeat(100000)
    case "spin": while (true) {}
    case "oom": { const a = []; while (true) a.push(new Array(1e6).fill(1.5)) }
    case "recurse": { const f = () => f(); return f() }
    case "fetch": return (await fetch(settings.url, { method: "post", body: JSON.stringify(event) })).status
    case "fetchurl": return (await fetch(new URL(settings.url), { method: "put", body: "u" })).status
    case "sleep": await new Promise((r) => setTimeout(r, p.ms)); return "slept"
    case "log": for (let i = 0; i < 1000; i++) console.log("line", i, "x".repeat(20)); return "logged"
    case "globals": return Object.getOwnPropertyNames(globalThis).sort()
  }
  return counter
}
