"""``ocpp-gateway route``: a thin client of a running gateway's admin API (chargers,
routes, waves; docs/admin.md). The token comes from the environment or a file, never a
flag (it would show in ``ps``).

Layer: top (a command; ``gateway.cli`` registers it). Standard library HTTP only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

from gateway import __version__
from gateway.commands import Refused, utc_text

ADMIN_URL_ENV: Final = "OCPP_GATEWAY_ADMIN_URL"
ADMIN_TOKEN_ENV: Final = "OCPP_GATEWAY_ADMIN_TOKEN"  # the setting admin_token's variable
DEFAULT_ADMIN_URL: Final = "http://127.0.0.1:9100"
_ADMIN_TIMEOUT: Final = 15.0
_TOKEN_FILE_LIMIT: Final = 4096
_ANSWER_LIMIT: Final = 4096  # bytes of an error answer read for its message
_APPLIED: Final = {
    "now": "moved now (reconnected to its new CSMS)",
    "after_transaction": "moves when its open transaction ends",
    "not_connected": "not connected here: applies when it next connects",
    "unchanged": "already routed so: nothing changes",
}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would hand the token to another address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _admin_token(args: argparse.Namespace) -> str:
    """The token: --token-file (first line), else the environment; never a flag."""
    if args.token_file is not None:
        try:
            with open(args.token_file, "rb") as file:
                data = file.read(_TOKEN_FILE_LIMIT + 1)
        except OSError as exc:
            raise Refused(f"cannot read the token file {args.token_file}: {exc.strerror}") from None
        if len(data) > _TOKEN_FILE_LIMIT:
            raise Refused(f"the token file {args.token_file} is too large to hold a token")
        try:
            token = data.decode("ascii").strip()
        except UnicodeDecodeError:
            raise Refused(f"the token file {args.token_file} is not ASCII text") from None
        if not token or any(ch.isspace() for ch in token):
            raise Refused(f"the token file {args.token_file} must hold one token, alone")
        return token
    token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if not token:
        raise Refused(f"no admin token: set {ADMIN_TOKEN_ENV} or pass --token-file PATH")
    return token


def _admin_url(args: argparse.Namespace) -> str:
    url = str(args.admin or os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise Refused(f"--admin must be an http:// or https:// URL, not {url!r}")
    return url


def _admin_call(args: argparse.Namespace, method: str, path: str, body: object = None) -> Any:
    """One admin API request; its JSON answer, or Refused with one line."""
    base, token = _admin_url(args), _admin_token(args)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": f"ocpp-gateway/{__version__}",
            **({"Content-Type": "application/json"} if data is not None else {}),
        },
    )
    # No proxies from the environment (the token would pass through them), no redirects.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())
    try:
        with opener.open(request, timeout=_ADMIN_TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            detail = _error_detail(error)
        if error.code == 401:
            raise Refused("the admin token was refused") from None
        if error.code == 404 and not detail:
            raise Refused(
                f"no admin API at {base}: is it the gateway's --metrics address, and is "
                "admin_token set there?"
            ) from None
        if 400 <= error.code < 500:
            raise Refused(f"refused ({error.code}): {detail or error.reason}") from None
        failed = f"the admin API failed (HTTP {error.code}): {detail or error.reason}"
        raise Refused(failed, 1) from None
    except urllib.error.URLError as error:
        raise Refused(f"cannot reach the admin API at {base}: {error.reason}", 1) from None
    except (OSError, TimeoutError) as error:
        raise Refused(f"cannot reach the admin API at {base}: {error}", 1) from None
    except ValueError:
        raise Refused(f"the admin API at {base} did not answer JSON", 1) from None


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The ``error`` text of an admin API error answer ("" if it has none)."""
    try:
        answer = json.loads(error.read(_ANSWER_LIMIT))
    except (ValueError, OSError):
        return ""
    message = answer.get("error") if isinstance(answer, dict) else None
    return " ".join(str(message).split()) if message else ""


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _route_list(args: argparse.Namespace) -> int:
    query = f"?{urllib.parse.urlencode({'route': args.route})}" if args.route else ""
    chargers = _admin_call(args, "GET", f"/chargers{query}")
    if args.json:
        _print_json(chargers)
        return 0
    if not chargers:
        which = f" on route {args.route}" if args.route else ""
        print(f"no charger connected{which}", file=sys.stderr)
        return 0
    rows = [("CHARGER", "ROUTE", "PROTOCOL", "VENDOR/MODEL", "FIRMWARE", "CONNECTED SINCE",
             "LAST MESSAGE")]  # fmt: skip
    for charger in chargers:
        route = charger["route"] + (" +shadow" if charger.get("shadow") else "")
        if charger.get("pending_route"):
            route += f" (-> {charger['pending_route']})"
        vendor = "/".join(str(charger[k]) for k in ("vendor", "model") if charger.get(k))
        last = charger.get("last_message_at")
        rows.append((
            str(charger["station_id"]), route, str(charger["protocol"]), vendor or "-",
            str(charger.get("firmware") or "-"), utc_text(charger["connected_since"]),
            "-" if last is None else utc_text(last),
        ))  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _change_line(change: dict[str, Any]) -> str:
    shadow = " with shadow" if change.get("shadow") else ""
    applied = _APPLIED.get(str(change.get("applied")), str(change.get("applied")))
    return f"{change['station_id']}: {change['route']}{shadow}: {applied}"


def _route_set(args: argparse.Namespace) -> int:
    body = {"route": args.route, "shadow": args.shadow}
    path = f"/chargers/{urllib.parse.quote(args.charge_point_id, safe='')}/route"
    print(_change_line(_admin_call(args, "PUT", path, body)))
    return 0


def _route_clear(args: argparse.Namespace) -> int:
    path = f"/chargers/{urllib.parse.quote(args.charge_point_id, safe='')}/route"
    change = _admin_call(args, "DELETE", path)
    print(f"{args.charge_point_id}: own rule cleared; the table routes it {_change_line(change)}")
    return 0


def _route_wave(args: argparse.Namespace) -> int:
    body = {"percent": args.percent, "route": args.route, "shadow": args.shadow}
    answer = _admin_call(args, "PUT", f"/waves/{urllib.parse.quote(args.name, safe='')}", body)
    moved = answer["moved"]
    shadow = " with shadow" if args.shadow else ""
    print(
        f"wave {args.name}: {args.percent:g}% of the chargers to {args.route}{shadow}; "
        f"{moved} connected charger{'s' if moved != 1 else ''} move{'s' if moved == 1 else ''}"
    )
    return 0


def _rule_text(rule: dict[str, Any]) -> str:
    conditions = [
        f"{key}={rule[key]:g}%" if key == "percent" else f"{key}={rule[key]}"
        for key in ("charger", "pattern", "vendor", "model", "percent")
        if key in rule
    ]
    shadow = " +shadow" if rule.get("shadow") else ""
    name = f"{rule['name']}: " if rule.get("name") else ""
    return f"{name}{' '.join(conditions)} -> {rule['route']}{shadow}"


def _route_rules(args: argparse.Namespace) -> int:
    table = _admin_call(args, "GET", "/routes")
    if args.json:
        _print_json(table)
        return 0
    for number, rule in enumerate(table["rules"], 1):
        print(f"{number:>3}. {_rule_text(rule)}")
    print(f"default: {table['default']}")
    return 0


def route(args: argparse.Namespace) -> int:
    actions = {"list": _route_list, "set": _route_set, "clear": _route_clear,
               "wave": _route_wave, "rules": _route_rules}  # fmt: skip
    try:
        return actions[args.route_command](args)
    except Refused as exc:
        print(f"ocpp-gateway: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage is 0 to 100, not {text}")
    return value


class _NoTokenFlag(argparse.Action):
    """``--token`` is refused outright (and not taken for --token-file): a token on the
    command line shows in ``ps`` and shell history. The value is not echoed."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(f"no --token flag: set {ADMIN_TOKEN_ENV} or pass --token-file PATH")


def add_route_parser(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--token", action=_NoTokenFlag, help=argparse.SUPPRESS)
    common.add_argument(
        "--admin",
        default=None,
        metavar="URL",
        help=f"the gateway's ops listener (its --metrics address) [env {ADMIN_URL_ENV}; "
        f"default {DEFAULT_ADMIN_URL}]",
    )
    common.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help=f"read the admin token from this file [default: env {ADMIN_TOKEN_ENV}]",
    )
    route = commands.add_parser(
        "route",
        help="route chargers of a running gateway (its admin API): list, set, clear, wave, rules",
        description="A thin client of a running gateway's admin API (docs/admin.md). The "
        f"token comes from {ADMIN_TOKEN_ENV} or --token-file, never a flag (other users "
        "see command lines). Exit codes: 0 done, 1 the gateway could not be reached or "
        "failed, 2 refused (usage, token, or a change the gateway refuses).",
    )
    actions = route.add_subparsers(dest="route_command", required=True)
    listing = actions.add_parser(
        "list",
        parents=[common],
        allow_abbrev=False,
        help="the connected chargers, their routes and versions",
    )
    listing.add_argument(
        "--route", choices=("translate", "legacy", "passthrough"), help="only this route"
    )
    listing.add_argument("--json", action="store_true", help="the API's JSON as is")
    set_ = actions.add_parser(
        "set",
        parents=[common],
        allow_abbrev=False,
        help="route one charger (stored; it moves at a safe point)",
        description="Give the charger a rule of its own. A connected charger moves at once "
        "when it has no open transaction, else when its transaction ends.",
    )
    set_.add_argument("charge_point_id", metavar="CHARGE_POINT_ID")
    set_.add_argument("route", choices=("translate", "legacy"))
    set_.add_argument(
        "--shadow",
        action="store_true",
        help="also mirror its traffic, read-only, to the other CSMS",
    )
    clear = actions.add_parser(
        "clear",
        parents=[common],
        allow_abbrev=False,
        help="drop a charger's own rule: the table decides again",
    )
    clear.add_argument("charge_point_id", metavar="CHARGE_POINT_ID")
    wave = actions.add_parser(
        "wave",
        parents=[common],
        allow_abbrev=False,
        help="create or change a percentage wave",
        description="The wave NAME takes PERCENT of the chargers (a stable hash of each id): "
        "raising it only adds chargers, lowering it gives some back.",
    )
    wave.add_argument("name", metavar="NAME")
    wave.add_argument("percent", type=_percent, metavar="PERCENT")
    wave.add_argument("--route", choices=("translate", "legacy"), default="translate")
    wave.add_argument("--shadow", action="store_true", help="with shadow (see set)")
    rules = actions.add_parser(
        "rules", parents=[common], allow_abbrev=False, help="the routing table in force"
    )
    rules.add_argument("--json", action="store_true", help="the API's JSON as is")
