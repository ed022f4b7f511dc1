"""Names that match nothing help instead of staying silent (issue 13): a `[functions.NAME]`
table without a plugin warns (with "did you mean"), and `logs`, `deliveries`, `replay` and
`test` with an unknown function exit 2 naming it."""

from __future__ import annotations

import pytest

HELLO = "async function onTrack(event, settings) { return settings.greeting || 'no settings' }"


def test_misspelled_function_table_warns_in_status_and_log(daemon) -> None:
    d = daemon('[functions.helo]\nsettings = { greeting = "hi" }\n', plugins={"hello": HELLO})
    warnings = d.status()["warnings"]
    assert len(warnings) == 1
    assert "[functions.helo] matches no plugin file helo.js" in warnings[0]
    assert "did you mean [functions.hello]?" in warnings[0]
    out = d.ctl("status")
    assert "warning" in out.stdout and "did you mean [functions.hello]?" in out.stdout
    d.wait_until(lambda: "function_config_without_plugin" in d.stderr(), what="warning logged")
    assert '"did_you_mean": "hello"' in d.stderr()


def test_table_for_a_plugin_that_exists_does_not_warn(daemon) -> None:
    d = daemon('[functions.hello]\nsettings = { greeting = "hi" }\n', plugins={"hello": HELLO})
    assert d.status()["warnings"] == []
    assert "function_config_without_plugin" not in d.stderr()


@pytest.mark.parametrize(
    "args",
    [("logs", "helo"), ("logs", "-f", "helo"), ("deliveries", "helo"), ("replay", "helo"), ("test", "helo")],
    ids=["logs", "logs-f", "deliveries", "replay", "test"],
)
def test_unknown_function_exits_2_naming_it(daemon, args: tuple[str, ...]) -> None:
    d = daemon(plugins={"hello": HELLO})
    out = d.ctl(*args, timeout=30)
    assert out.returncode == 2, out
    assert "no function named 'helo'" in out.stderr
    assert "did you mean 'hello'?" in out.stderr
    assert out.stdout == ""


def test_known_names_still_work_for_logs_deliveries_and_replay(daemon) -> None:
    d = daemon("[functions.configured]\nenabled = false\n", plugins={"hello": HELLO})
    assert d.ctl("logs", "hello").returncode == 0
    assert d.ctl("deliveries", "hello").returncode == 0
    assert d.ctl("replay", "configured").returncode == 0  # a config table counts as a name
