"""``meterwatch alerts mute | unmute | list``: what operators silence, and what is open.

``mute --institution ID | --device ID | --rule R --until TIME --reason TEXT``
adds a mute (until an RFC 3339 time, or a duration like ``8h``, ``2d``);
``unmute`` removes the mutes on that institution, device or rule; ``list``
shows the open alerts (acknowledged or not, muted or not) from the alert
state, and the mutes in force.  Exit codes: 0 done, 1 nothing to unmute,
2 bad usage.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

from analytics.alerts import load_book
from analytics.mutes import KINDS, Mute, load_mutes, muted, save_mutes
from meterwatch.localtime import DAY, local_text
from meterwatch.settings import Settings
from meterwatch.timestamps import parse_timestamp

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([mhd])")
_UNIT_S = {"m": 60, "h": 3600, "d": DAY}


def add_parser(sub: argparse._SubParsersAction, func) -> None:  # noqa: ANN001 - the command's entry point
    p = sub.add_parser("alerts", help="mute, unmute and list alerts")
    asub = p.add_subparsers(dest="alerts_action", required=True)
    for name, text in (("mute", "stop sending alerts of an institution, a device or a rule until a time"),
                       ("unmute", "send them again")):
        mp = asub.add_parser(name, help=text)
        target = mp.add_mutually_exclusive_group(required=True)
        for kind in KINDS:
            target.add_argument(f"--{kind}", metavar="ID" if kind != "rule" else "RULE")
        if name == "mute":
            mp.add_argument("--until", required=True, help="RFC 3339 time, or a duration: 30m, 8h, 2d")
            mp.add_argument("--reason", required=True, help="why (kept with the mute, shown by list)")
            mp.add_argument("--by", default="cli", help="who mutes")
    lp = asub.add_parser("list", help="open, acknowledged and muted alerts, and the mutes in force")
    lp.add_argument("--open", action="store_true", help="only alerts not acknowledged")
    lp.add_argument("--institution", metavar="ID", help="one institution only")
    p.set_defaults(func=func)


def run(args: argparse.Namespace, settings: Settings) -> int:
    return {"mute": _mute, "unmute": _unmute, "list": _list}[args.alerts_action](args, settings)


def _target(args: argparse.Namespace) -> tuple[str, str]:
    return next((kind, getattr(args, kind)) for kind in KINDS if getattr(args, kind))


def _until(text: str, now: int) -> int:
    found = _DURATION.fullmatch(text.strip())
    if found:
        return now + int(float(found.group(1)) * _UNIT_S[found.group(2)])
    return parse_timestamp(text)


def _mute(args: argparse.Namespace, settings: Settings) -> int:
    now = int(time.time())
    kind, value = _target(args)
    try:
        until = _until(args.until, now)
    except ValueError as exc:
        print(f"error: --until {args.until!r}: {exc}", file=sys.stderr)
        return 2
    if until <= now:
        print(f"error: --until {args.until!r} is not in the future", file=sys.stderr)
        return 2
    path = settings.analytics.mute_file
    mutes = [m for m in load_mutes(path) if m.until > now]  # the expired ones go
    mutes.append(Mute(kind, value, until, args.reason, args.by, now))
    save_mutes(path, mutes)
    print(f"muted {kind} {value} until {local_text(until)} (local): {args.reason}")
    return 0


def _unmute(args: argparse.Namespace, settings: Settings) -> int:
    kind, value = _target(args)
    path = settings.analytics.mute_file
    mutes = load_mutes(path)
    kept = [m for m in mutes if (m.kind, m.value) != (kind, value)]
    if len(kept) == len(mutes):
        print(f"no mute on {kind} {value}")
        return 1
    save_mutes(path, kept)
    print(f"unmuted {kind} {value}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    cfg = settings.analytics
    now = int(time.time())
    mutes = [m for m in load_mutes(cfg.mute_file) if m.until > now]
    book = load_book(cfg.state_file, update_interval_s=cfg.update_interval_s)
    alerts = sorted(book.alerts.values(), key=lambda a: (a.institution, a.rule, a.device))
    shown = 0
    print("id                rule         institution        device               severity  since             state")
    for a in alerts:
        if (args.open and a.acknowledged) or (args.institution and a.institution != args.institution):
            continue
        mute = muted(a.event("open", now), mutes, now)
        state = ("acknowledged" if a.acknowledged else "open") + (f", muted ({mute.reason})" if mute else "")
        print(f"{a.id:<17} {a.rule:<12} {a.institution:<18} {a.device:<20} {a.severity:<9} "
              f"{local_text(a.since):<17} {state}")
        shown += 1
    print(f"{shown} alert(s)")
    for m in mutes:
        print(f"mute: {m.kind} {m.value} until {local_text(m.until)} by {m.by}: {m.reason}")
    return 0
