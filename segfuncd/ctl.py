"""`segfuncctl`: the operator's command line, a thin client of the admin socket.

It parses arguments, calls the daemon's admin API (HTTP over the admin Unix socket, with
httpx), and formats the answer. It never opens the database: everything it shows is what
the daemon serves, so `status --json` and `/metrics` agree with the table.

Here: the click commands, their shared options and `main`. Not here: the admin client and
finding the socket (`ctl_client.py`), turning the daemon's JSON into text (`ctl_format.py`,
pure) and the files `init` writes (`ctl_starter.py`).

Operator mistakes (daemon not running, wrong socket, bad config, unknown function) end in
one line on stderr and a non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from . import __version__
from .ctl_client import AdminClient, CtlError, UnknownFunctionName, admin_socket_from_config
from .ctl_format import render_deliveries, render_delivery, render_log_line, render_status, render_test
from .ctl_starter import EXAMPLE_PLUGIN, starter_config
from .errors import SegfuncdError
from .private_files import write_private_text

EXIT_OK = 0
EXIT_FAILED = 1  # the function threw (test), or the daemon refused the request
EXIT_USAGE = 2  # click's own code for bad arguments; also an unknown function name
EXIT_UNREACHABLE = 3  # no daemon at the socket, or the config file is invalid

EXIT_CODES_HELP = """\b
Exit status:
  0  success
  1  the function threw an error (test), or the daemon refused the request
  2  bad arguments, or no function of that name
  3  the daemon could not be reached, or the config file is invalid
"""

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 88}
TEST_TIMEOUT_S = 120.0  # a test runs the function now: up to timeout_ms per event

F = TypeVar("F", bound=Callable[..., Any])


def _client(ctx: click.Context) -> AdminClient:
    obj = ctx.ensure_object(dict)
    if "client" not in obj:
        socket = obj.get("socket")
        path = Path(socket) if socket else admin_socket_from_config(obj.get("config"))
        obj["client"] = AdminClient(path)
        ctx.call_on_close(obj["client"].close)
    client: AdminClient = obj["client"]
    return client


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def json_option(f: F) -> F:
    """--json: print the data behind the table."""
    return click.option("--json", "as_json", is_flag=True, help="Print the daemon's answer as JSON.")(f)


# --- the commands -------------------------------------------------------------------------


@click.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES_HELP)
@click.option(
    "--config",
    "config",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Config file (else $SEGFUNCD_CONFIG, ./segfuncd.toml, /etc/segfuncd/segfuncd.toml).",
)
@click.option(
    "--socket",
    "socket",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Admin socket of the daemon (overrides the config's admin.socket).",
)
@click.version_option(__version__, "-V", "--version", prog_name="segfuncctl")
@click.pass_context
def cli(ctx: click.Context, config: str | None, socket: str | None) -> None:
    """Inspect and control a running segfuncd over its admin socket.

    \b
    Example:
      segfuncctl status
    """
    ctx.ensure_object(dict).update(config=config, socket=socket)


@cli.command(epilog=EXIT_CODES_HELP, short_help="Daemon health, queue depth, each function's state and latency.")
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Daemon health, queue depth and every function's state, counts and latency.

    \b
    Example:
      segfuncctl status
      segfuncctl status --json | jq '.functions[] | {name, state, dead}'
    """
    data = _client(ctx).get_json("/status")
    if as_json:
        _print_json(data)
    else:
        click.echo(render_status(data))


@cli.command(epilog=EXIT_CODES_HELP, short_help="Functions' console output and the daemon's events.")
@click.argument("function", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they are written (Ctrl-C stops).")
@click.option(
    "-n",
    "--lines",
    "n",
    type=click.IntRange(0, 10_000),
    default=20,
    show_default=True,
    help="How many of the newest lines to print first.",
)
@click.option("--level", metavar="LEVEL", help="Only lines at this level or above (debug, info, warn, error).")
@click.option("--message-id", "message_id", metavar="ID", help="Only lines about this event (its messageId).")
@click.option("--cluster", is_flag=True, help="Every node's lines (cluster mode), each with its node=.")
@json_option
@click.pass_context
def logs(
    ctx: click.Context,
    function: str | None,
    follow: bool,
    n: int,
    level: str | None,
    message_id: str | None,
    cluster: bool,
    as_json: bool,
) -> None:
    """The functions' console output and the daemon's own events, newest last.

    FUNCTION limits the output to one function's lines.

    \b
    Example:
      segfuncctl logs -n 50 teams
      segfuncctl logs -f --level warn
      segfuncctl logs --message-id ajs-next-1715000000-abc
      segfuncctl logs --cluster -n 100
    """
    client = _client(ctx)
    params: dict[str, Any] = {"n": n, "function": function, "level": level, "message_id": message_id}
    if cluster:
        params["cluster"] = 1
    if follow:
        for line in client.stream_lines("/logs", follow=1, **params):
            if not line.strip():
                continue  # keep-alive
            click.echo(line if as_json else render_log_line(json.loads(line)))
        return
    data = client.get_json("/logs", **params)
    for record in data["logs"]:
        click.echo(json.dumps(record, default=str) if as_json else render_log_line(record))


@cli.command(epilog=EXIT_CODES_HELP, short_help="Run a test event through a function now (Send Test Event).")
@click.argument("function")
@click.argument("event_file", metavar="[EVENT.json | -]", required=False, type=click.File("r"))
@click.option(
    "--settings",
    "settings_file",
    metavar="FILE",
    type=click.File("r"),
    help="JSON object of settings to use instead of the configured ones (merged over them).",
)
@json_option
@click.pass_context
def test(ctx: click.Context, function: str, event_file: Any, settings_file: Any, as_json: bool) -> None:
    """Run one event through FUNCTION's current version now, like the editor's Send Test Event.

    Prints the Callback Return (the returned value, or the error thrown), the Log Output and
    the requests the function made. Nothing is queued and nothing counts as a delivery.
    EVENT.json holds one event or an array of events; "-" reads standard input; without it a
    sample event of a type the function handles is used.

    \b
    Example:
      segfuncctl test teams event.json
      echo '{"type": "track", "event": "Signed Up", "userId": "u1"}' | segfuncctl test teams -
    """
    body: dict[str, Any] = {"function": function}
    if event_file is not None:
        payload = _read_json(event_file, "EVENT")
        if isinstance(payload, list):
            body["events"] = payload
        elif isinstance(payload, dict):
            body["event"] = payload
        else:
            raise click.BadParameter("expected a JSON object or an array of objects", param_hint="EVENT.json")
    if settings_file is not None:
        settings = _read_json(settings_file, "--settings")
        if not isinstance(settings, dict):
            raise click.BadParameter("expected a JSON object", param_hint="--settings")
        body["settings"] = settings
    data = _client(ctx).post_json("/test", body, timeout=TEST_TIMEOUT_S)
    if as_json:
        _print_json(data)
    else:
        click.echo(render_test(data))
    if any(r.get("error") for r in data.get("results", [])):
        ctx.exit(EXIT_FAILED)


def _read_json(f: Any, what: str) -> Any:
    try:
        return json.load(f)
    except ValueError as exc:
        raise click.BadParameter(f"{getattr(f, 'name', '?')}: not JSON: {exc}", param_hint=what) from exc


@cli.command(epilog=EXIT_CODES_HELP, short_help="Re-read the config and the plugins now.")
@click.pass_context
def reload(ctx: click.Context) -> None:
    """Re-read the config and the plugins now (saving either also does it).

    Every key is applied except those bound to what the daemon opened at start
    (listen addresses, sockets, the storage file, plugins_dir, workers): those are
    named, as in "config reloaded; restart needed for: intake.listen". A config
    that does not parse changes nothing and exits 1 with the error.

    \b
    Example:
      segfuncctl reload
    """
    data = _client(ctx).post_json("/reload", {})
    click.echo(data.get("message") or "reloaded")


@cli.command(epilog=EXIT_CODES_HELP, short_help="Move dead letters back to pending.")
@click.argument("function", required=False)
@click.option("--id", "delivery_id", type=int, help="Replay only this delivery.")
@click.pass_context
def replay(ctx: click.Context, function: str | None, delivery_id: int | None) -> None:
    """Move dead-lettered deliveries back to pending, so they are tried again now.

    Without FUNCTION or --id, every dead letter is replayed.

    \b
    Example:
      segfuncctl replay teams
      segfuncctl replay --id 1234
    """
    data = _client(ctx).post_json("/replay", {"function": function, "id": delivery_id})
    n = int(data.get("replayed", 0))
    scope = f" of {function}" if function else ""
    scope += f" (id {delivery_id})" if delivery_id is not None else ""
    click.echo(f"replayed {n} dead-lettered {'delivery' if n == 1 else 'deliveries'}{scope}")


@cli.command(epilog=EXIT_CODES_HELP, short_help="Hold a function's events pending (survives restarts).")
@click.argument("function")
@json_option
@click.pass_context
def pause(ctx: click.Context, function: str, as_json: bool) -> None:
    """Hold FUNCTION's events: they are still accepted and stay pending, no attempt is used.

    The pause survives restarts; `status` shows the function as paused until `resume`.

    \b
    Example:
      segfuncctl pause teams
    """
    data = _client(ctx).post_json("/pause", {"function": function})
    if as_json:
        _print_json(data)
    elif data.get("changed"):
        click.echo(f"paused {function}: its events wait until `segfuncctl resume {function}`")
    else:
        click.echo(f"{function} was already paused")


@cli.command(epilog=EXIT_CODES_HELP, short_help="Deliver a paused function's events again.")
@click.argument("function")
@json_option
@click.pass_context
def resume(ctx: click.Context, function: str, as_json: bool) -> None:
    """Resume FUNCTION: the events held while it was paused are due at once.

    \b
    Example:
      segfuncctl resume teams
    """
    data = _client(ctx).post_json("/resume", {"function": function})
    if as_json:
        _print_json(data)
    elif data.get("changed"):
        n = int(data.get("deliveries", 0))
        click.echo(f"resumed {function}: {n} held {'delivery is' if n == 1 else 'deliveries are'} due now")
    else:
        click.echo(f"{function} was not paused")


@cli.command(epilog=EXIT_CODES_HELP, short_help="List deliveries, or show one with every attempt.")
@click.argument("args", metavar="[FUNCTION] | show ID", nargs=-1)
@click.option(
    "--state",
    type=click.Choice(["dead", "retrying", "pending", "leased", "delivered", "discarded", "filtered"]),
    help="Only deliveries in this state.",
)
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=20, show_default=True, help="How many, newest first.")
@click.option("--message-id", "message_id", metavar="ID", help="Only deliveries of this event, across functions.")
@json_option
@click.pass_context
def deliveries(
    ctx: click.Context, args: tuple[str, ...], state: str | None, n: int, message_id: str | None, as_json: bool
) -> None:
    """List deliveries, or show one with its event and every attempt.

    `show ID` prints each attempt like the Functions editor's debugger: Callback Return,
    Log Output and the Requests the function made (headers and bodies with --json).

    \b
    Example:
      segfuncctl deliveries teams --state dead
      segfuncctl deliveries --message-id ajs-next-1715000000-abc
      segfuncctl deliveries show 1234
    """
    client = _client(ctx)
    if args and args[0] == "show":
        if len(args) != 2 or not args[1].isdigit():
            raise click.UsageError("usage: segfuncctl deliveries show ID")
        data = client.get_json(f"/deliveries/{int(args[1])}")
        _print_json(data) if as_json else click.echo(render_delivery(data))
        return
    if len(args) > 1:
        raise click.UsageError("expected at most one FUNCTION")
    data = client.get_json("/deliveries", function=args[0] if args else None, state=state, n=n, message_id=message_id)
    _print_json(data) if as_json else click.echo(render_deliveries(data))


@cli.command(epilog=EXIT_CODES_HELP, short_help="Print the web console's URL with its token (and open it).")
@click.option("--no-browser", is_flag=True, help="Only print the URL, even when a browser is available.")
@click.pass_context
def console(ctx: click.Context, no_browser: bool) -> None:
    """Print the web console's URL, with the token that logs this browser in.

    The token is read from console.token in the daemon's state directory (so this needs
    read access to it). A browser is opened only when one is available ($BROWSER, or a
    display: $DISPLAY / $WAYLAND_DISPLAY). Over SSH, forward the port and open the URL
    locally: ssh -L 8089:127.0.0.1:8089 host

    \b
    Example:
      segfuncctl console
      segfuncctl console --no-browser
    """
    from .ctl_client import console_target  # the console's address and token, from the config

    url = console_target(ctx.ensure_object(dict).get("config"))
    click.echo(url)
    if not no_browser and any(os.environ.get(v) for v in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")):
        import webbrowser

        webbrowser.open(url)


@cli.command(epilog=EXIT_CODES_HELP, short_help="Write a starter segfuncd.toml and an example plugin.")
@click.argument("directory", metavar="[DIR]", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Write a commented starter segfuncd.toml and an example plugin into DIR.

    Existing files are never overwritten.

    \b
    Example:
      segfuncctl init /etc/segfuncd && segfuncd --config /etc/segfuncd/segfuncd.toml
    """
    root = Path(directory)
    config_path, plugin_path = root / "segfuncd.toml", root / "plugins" / "example.js"
    existing = [str(p) for p in (config_path, plugin_path) if p.exists()]
    if existing:
        raise CtlError(f"refusing to overwrite {', '.join(existing)}")
    plugin_path.parent.mkdir(parents=True, exist_ok=True)
    write_private_text(config_path, starter_config())  # 0600: write keys and secrets live here
    plugin_path.write_text(EXAMPLE_PLUGIN, encoding="utf-8")
    click.echo(f"wrote {config_path}\nwrote {plugin_path}\nstart with: segfuncd --config {config_path}")


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: operator mistakes print one line; bugs keep their traceback."""
    try:
        code = cli.main(args=argv, prog_name="segfuncctl", standalone_mode=False)
    except SegfuncdError as exc:
        click.echo(f"segfuncctl: {exc}", err=True)
        if isinstance(exc, UnknownFunctionName):
            sys.exit(EXIT_USAGE)
        sys.exit(EXIT_FAILED if isinstance(exc, CtlError) else EXIT_UNREACHABLE)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C ends `logs -f`: not an error worth a traceback
    except BrokenPipeError:
        sys.exit(EXIT_OK)  # `segfuncctl logs | head`
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
