"""Reload applies everything it can and names what needs a restart; saving the config is a reload (issue 13)."""

from __future__ import annotations

from helpers import save_config, with_changes

FAILING = """
async function onTrack(event, settings) {
  console.log("attempt")
  throw new RetryError("try again")
}
"""

FORWARD = """
async function onTrack(event, settings) {
  const res = await fetch(settings.sink + "/" + event.event, {method: "post", body: "{}"})
  return res.status
}
"""


def test_reload_of_retry_changes_the_retry_spacing_and_limit(daemon) -> None:
    d = daemon("[retry]\nmax_attempts = 5\nbase_delay_s = 3600.0\n", plugins={"fails": FAILING})
    save_config(d.config_path, with_changes(d.config, retry={"max_attempts": 2, "base_delay_s": 0.1}))
    out = d.ctl("reload")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "config reloaded"
    d.post("/v1/track", {"userId": "u", "event": "e"})
    # With the old [retry] the second attempt would come an hour later, and a third would follow.
    fn = d.wait_until(lambda: (f := d.function_status("fails")).get("dead") == 1 and f, timeout=20, what="dead letter")
    assert fn["attempts"] == 2


def test_saving_the_config_file_is_a_reload(daemon, sink) -> None:
    d = daemon(f'[functions.fwd]\nsettings = {{ sink = "{sink.url}/a" }}\n', plugins={"fwd": FORWARD})
    new = with_changes(d.config, functions={"fwd": {"settings": {"sink": f"{sink.url}/b"}}})
    save_config(d.config_path, new)
    d.wait_until(lambda: "config_file_changed" in d.stderr() and '"reloaded"' in d.stderr(), what="reload on save")
    d.post("/v1/track", {"userId": "u", "event": "saved"})
    assert sink.wait_for(1)[0].path == "/b/saved"


def test_saving_a_broken_config_keeps_the_old_one(daemon, sink) -> None:
    d = daemon(f'[functions.fwd]\nsettings = {{ sink = "{sink.url}/a" }}\n', plugins={"fwd": FORWARD})
    d.config_path.write_text(d.config_path.read_text() + "\n[retry]\nmax_atempts = 3\n")
    d.wait_until(lambda: "config_reload_failed" in d.stderr(), what="failed reload logged")
    d.post("/v1/track", {"userId": "u", "event": "kept"})
    assert sink.wait_for(1)[0].path == "/a/kept"


def test_reload_names_what_needs_a_restart_and_applies_the_rest(daemon, sink) -> None:
    d = daemon(f'[functions.fwd]\nsettings = {{ sink = "{sink.url}/a" }}\n', plugins={"fwd": FORWARD})
    old_listen = d.config["intake"]["listen"]
    new = with_changes(
        d.config,
        intake={"listen": "127.0.0.1:1"},
        functions={"fwd": {"settings": {"sink": f"{sink.url}/b"}}},
    )
    save_config(d.config_path, new)
    out = d.ctl("reload")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "config reloaded; restart needed for: intake.listen"
    d.post("/v1/track", {"userId": "u", "event": "applied"})  # still served on the old address
    assert sink.wait_for(1)[0].path == "/b/applied"
    # Back to the running address: nothing left to restart for.
    save_config(d.config_path, with_changes(new, intake={"listen": old_listen}))
    assert d.ctl("reload").stdout.strip() == "config reloaded"


def test_failed_reload_then_fixed_reload_asks_for_no_restart(daemon) -> None:
    d = daemon()
    good = d.config_path.read_text()
    d.config_path.write_text(good + "\n[bogus]\n")
    failed = d.ctl("reload")
    assert failed.returncode != 0 and "bogus" in failed.stderr
    assert "restart" not in failed.stdout + failed.stderr
    d.config_path.write_text(good)
    out = d.ctl("reload")
    assert out.returncode == 0 and out.stdout.strip() == "config reloaded", out


SLEEPER = """
async function onTrack(event, settings) {
  await new Promise((resolve) => setTimeout(resolve, 1500))
  return "slept"
}
"""


def test_reload_of_runtime_limits_replaces_the_runners(daemon) -> None:
    d = daemon("[retry]\nmax_attempts = 1\n", plugins={"sleeper": SLEEPER})
    save_config(d.config_path, with_changes(d.config, runtime={"timeout_ms": 300}))
    assert d.ctl("reload").stdout.strip() == "config reloaded"
    d.post("/v1/track", {"userId": "u", "event": "e"})
    fn = d.wait_until(lambda: (f := d.function_status("sleeper")).get("dead") == 1 and f, timeout=20, what="timed out")
    assert "TimeoutError" in (fn["last_error"] or ""), fn
