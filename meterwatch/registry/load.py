"""Read and check the registry directory, collecting every problem with file and line.

Loading never stops at the first bad row: an officer fixing a 25,000-row
file wants the whole list at once.  Bad rows are left out of the loaded
registry, so a collector can still run on the good ones.
"""

from __future__ import annotations

import csv
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from meterwatch.const import (
    CONTACT_CHANNELS,
    DEFAULT_CITIES,
    GARBAGE_CATEGORIES,
    INSTITUTION_TYPES,
    KIND_UNITS,
    SEVERITIES,
)
from meterwatch.ids import is_valid_id
from meterwatch.redact import redact_url
from meterwatch.registry.model import Card, Contact, Device, Institution, Problem, Registry
from meterwatch.registry.tariffs import emission_problem, load_tariffs

BUDGET_COLUMNS = ("institution", "year", "kind", "yuan")
BUDGET_KINDS = ("electricity", "water", "heat", "total")
INSTITUTION_COLUMNS = ("id", "name", "city", "type", "subclass", "floor_area_m2", "occupants")
DEVICE_COLUMNS = ("id", "institution", "kind", "unit", "multiplier", "address")  # and optionally platform_id
CONTACT_COLUMNS = ("id", "name", "channel", "address", "scope", "rules", "min_severity", "quiet_hours")
CARD_COLUMNS = ("card", "institution", "zone", "owner_unit", "cleaner", "category")
ADDRESS_DIGITS = {"electricity": 12, "water": 14, "heat": 14}


class RegistryError(Exception):
    """The registry cannot be used at all (missing directory or required file)."""


def _rows(path: Path, columns: tuple[str, ...], problems: list[Problem]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)  # not DictReader: its per-row bookkeeping was a fifth of a 240,000-row load
        header = next(reader, [])
        missing = [c for c in columns if c not in header]
        if missing:
            problems.append(Problem(path.name, 1, f"missing column(s): {', '.join(missing)}"))
            return
        for values in reader:
            if not values:  # a blank line, as DictReader skips it
                continue
            if len(values) != len(header):
                problems.append(Problem(path.name, reader.line_num, "wrong number of fields"))
                continue
            row = dict(zip(header, values, strict=True))
            yield _first_line(reader.line_num, row), {k: v.strip() for k, v in row.items()}


def _first_line(last_line: int, row: dict[str, str]) -> int:
    """The line a record starts on: a quoted value may span lines, and the reader counts its last."""
    text = "".join(row.values())
    if "\n" not in text and "\r" not in text:  # the usual row: one line (a C-level scan, no regex per value)
        return last_line
    return last_line - sum(len(_LINE_BREAK.findall(v)) for v in row.values())


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTROL_NAMES = {"\n": "line feed", "\r": "carriage return", "\t": "tab", "\x00": "null"}


def text_problems(row: Mapping[str, str]) -> list[str]:
    """What no registry text may hold: it would reach line protocol, logs and dashboards.

    Control and other invisible characters (newline, tab, NUL, line
    separators, ...) and a trailing backslash, which InfluxDB cannot store
    at the end of a tag value.
    """
    errors: list[str] = []
    text = "".join(row.values())
    if text.isprintable() and "\\" not in text:
        return errors  # the usual row, checked at C speed (a 240,000-row registry: per character was 2/3 of the load)
    for column, value in row.items():
        bad = next((ch for ch in value if not ch.isprintable()), None)
        if bad is not None:
            name = _CONTROL_NAMES.get(bad) or unicodedata.name(bad, "control character").lower()
            errors.append(f"{column}: control or invisible character U+{ord(bad):04X} ({name}) "
                          f"at position {value.index(bad) + 1}")
        elif value.endswith("\\"):
            errors.append(f"{column}: ends with a backslash")
    return errors


def _number(text: str, cast: Callable[[str], Any], what: str, errors: list[str]) -> Any:
    try:
        value = cast(text)
    except ValueError:
        errors.append(f"{what} {text!r} is not a number")
        return None
    if value != value or value < 0:  # NaN or negative
        errors.append(f"{what} {text!r} must be a number >= 0")
        return None
    return value


def _check_id(text: str, what: str, errors: list[str]) -> None:
    if not is_valid_id(text):
        errors.append(f"bad {what} {text!r}: ids are 1-64 characters of A-Z a-z 0-9 _ . -")


def _load_table(
    path: Path,
    columns: tuple[str, ...],
    key: str,
    build: Callable[[dict[str, str], list[str]], Any],
    problems: list[Problem],
) -> dict[str, Any]:
    """Shared mechanism for the three CSV files: parse, check, report, de-duplicate."""
    loaded: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for line, row in _rows(path, columns, problems):
        errors = text_problems(row)
        _check_id(row[key], key if key != "id" else "id", errors)
        record = build(row, errors)
        if row[key] in first_line:
            errors.append(f"duplicate {key} {row[key]!r} (first on line {first_line[row[key]]})")
        if errors:
            problems.extend(Problem(path.name, line, e) for e in errors)
            continue
        first_line[row[key]] = line
        loaded[row[key]] = record
    return loaded


def _institution_builder(cities: Mapping[str, str]) -> Callable[[dict[str, str], list[str]], Institution]:
    def build(row: dict[str, str], errors: list[str]) -> Institution:
        if not row["name"]:
            errors.append("empty name")
        if row["city"] not in cities:
            errors.append(f"unknown city {row['city']!r} (known: {', '.join(cities)})")
        if row["type"] not in INSTITUTION_TYPES:
            errors.append(f"unknown type {row['type']!r} (known: {', '.join(INSTITUTION_TYPES)})")
        area = _number(row["floor_area_m2"], float, "floor_area_m2", errors)
        occupants = _number(row["occupants"], int, "occupants", errors)
        return Institution(row["id"], row["name"], row["city"], row["type"], row["subclass"],
                           area or 0.0, occupants or 0)
    return build


_PLATFORM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def _check_platform_id(row: dict[str, str], seen: dict[str, str], errors: list[str]) -> str:
    """The optional ``platform_id`` column: one registry device per platform device id."""
    platform_id = row.get("platform_id", "")
    if not platform_id:
        return ""
    if not _PLATFORM_ID.fullmatch(platform_id):
        errors.append(f"bad platform_id {platform_id!r}: 1-128 characters of A-Z a-z 0-9 _ . : -")
    elif platform_id in seen and seen[platform_id] != row["id"]:
        errors.append(f"duplicate platform_id {platform_id!r} (also device {seen[platform_id]!r})")
    else:
        seen[platform_id] = row["id"]
    return platform_id


def _device_builder(institutions: Mapping[str, Institution]) -> Callable[[dict[str, str], list[str]], Device]:
    platform_ids: dict[str, str] = {}  # platform_id -> the device id that has it

    def build(row: dict[str, str], errors: list[str]) -> Device:
        kind, unit, address = row["kind"], row["unit"], row["address"]
        if row["institution"] not in institutions:
            errors.append(f"device of unknown institution {row['institution']!r}")
        if kind not in KIND_UNITS:
            errors.append(f"unknown kind {kind!r} (known: {', '.join(KIND_UNITS)})")
        elif unit not in KIND_UNITS[kind]:
            errors.append(f"bad unit {unit!r} for a {kind} device (expected {' or '.join(KIND_UNITS[kind])})")
        multiplier = _number(row["multiplier"] or "1", float, "multiplier", errors)
        if multiplier == 0:
            errors.append("multiplier must be > 0")
        digits = ADDRESS_DIGITS.get(kind)
        if address and (digits is None or len(address) != digits or not address.isdigit()):
            expected = f"{digits} digits" if digits else "empty for a scale"
            errors.append(f"bad address {address!r} ({expected})")
        platform_id = _check_platform_id(row, platform_ids, errors)
        return Device(row["id"], row["institution"], kind, unit, multiplier or 1.0, address, platform_id)
    return build


def _card_builder(institutions: Mapping[str, Institution]) -> Callable[[dict[str, str], list[str]], Card]:
    def build(row: dict[str, str], errors: list[str]) -> Card:
        if row["institution"] not in institutions:
            errors.append(f"card of unknown institution {row['institution']!r}")
        if row["category"] not in GARBAGE_CATEGORIES:
            errors.append(f"unknown category {row['category']!r} (known: {', '.join(GARBAGE_CATEGORIES)})")
        return Card(row["card"], row["institution"], row["zone"], row["owner_unit"], row["cleaner"], row["category"])
    return build


_EMAIL = re.compile(r"[^@\s<>,;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_RULE_NAME = re.compile(r"[a-z][a-z0-9_]*")  # the names rules are discovered under; analytics checks they exist
_QUIET = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


def _check_address(channel: str, address: str, errors: list[str]) -> None:
    """A mail address for email, an http(s) URL otherwise; secrets (signing keys, passwords) never in the CSV."""
    if channel == "email":
        if not _EMAIL.fullmatch(address):
            errors.append(f"address {address!r} is not an email address")
        return
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        errors.append(f"address {redact_url(address)!r} is not a URL")
        return
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors.append(f"address {redact_url(address)!r} is not an http(s) URL")
    elif parts.password is not None or any(k.lower() in ("secret", "sign", "timestamp")
                                           for k, _ in parse_qsl(parts.query)):
        errors.append(f"address {redact_url(address)!r} holds a secret: signing secrets and passwords belong in "
                      f"the settings (analytics.contact_secrets), never in contacts.csv")


def _check_scope(scope: str, cities: Mapping[str, str], institutions: Mapping[str, Institution],
                 errors: list[str]) -> tuple[str, str]:
    kind, _, ident = scope.partition(":")
    known = {"city": cities, "type": INSTITUTION_TYPES, "institution": institutions}
    if scope == "province":
        return "province", ""
    if kind not in known or not ident:
        errors.append(f"bad scope {scope!r} (province, city:ID, type:ID or institution:ID)")
    elif ident not in known[kind]:
        errors.append(f"scope {scope!r}: unknown {kind} {ident!r}")
    return kind, ident


def _check_quiet(text: str, errors: list[str]) -> tuple[int, int] | None:
    if not text:
        return None
    match = _QUIET.fullmatch(text)
    if match is None:
        errors.append(f"bad quiet_hours {text!r} (empty, or local HH:MM-HH:MM like 22:00-07:00)")
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if (h1, m1) == (h2, m2):
        errors.append(f"bad quiet_hours {text!r}: start and end are the same time")
        return None
    return h1 * 60 + m1, h2 * 60 + m2


def _contact_builder(cities: Mapping[str, str], institutions: Mapping[str, Institution]
                     ) -> Callable[[dict[str, str], list[str]], Contact]:
    def build(row: dict[str, str], errors: list[str]) -> Contact:
        if not row["name"]:
            errors.append("empty name")
        channel = row["channel"]
        if channel not in CONTACT_CHANNELS:
            errors.append(f"unknown channel {channel!r} (known: {', '.join(CONTACT_CHANNELS)})")
        else:
            _check_address(channel, row["address"], errors)
        scope, scope_id = _check_scope(row["scope"], cities, institutions, errors)
        rules = () if row["rules"] == "*" else tuple(row["rules"].split("|"))
        bad = [r for r in rules if not _RULE_NAME.fullmatch(r)]
        if bad or not row["rules"]:
            errors.append(f"bad rules {row['rules']!r} (* or rule names joined by |)")
        severity = row["min_severity"] or SEVERITIES[0]
        if severity not in SEVERITIES:
            errors.append(f"bad min_severity {severity!r} (known: {', '.join(SEVERITIES)})")
        quiet = _check_quiet(row["quiet_hours"], errors)
        return Contact(row["id"], row["name"], channel, row["address"], scope, scope_id, rules, severity, quiet)
    return build


def _load_quotas(path: Path, problems: list[Problem]) -> dict[str, Any]:
    """Structural check only; the quota model in analytics interprets the figures."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(Problem(path.name, getattr(exc, "lineno", 0) or 0, f"not valid TOML: {exc}"))
        return {}
    for type_name in data.get("type", {}):
        if type_name not in INSTITUTION_TYPES:
            problems.append(Problem(path.name, 0, f"[type.{type_name}]: unknown institution type"))
    headers = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if line.strip().replace(" ", "").startswith("[[conversion.emission]]")]
    for k, row in enumerate(data.get("conversion", {}).get("emission", [])):
        why = emission_problem(row)
        if why:
            problems.append(Problem(path.name, headers[k] if k < len(headers) else 0, why))
    return data


def _load_budgets(path: Path, institutions: Mapping[str, Institution], problems: list[Problem]
                  ) -> dict[tuple[str, int, str], float]:
    """What finance allocated: (institution, year, kind) -> yuan; kind electricity, water, heat or total."""
    budgets: dict[tuple[str, int, str], float] = {}
    first: dict[tuple[str, int, str], int] = {}
    for line, row in _rows(path, BUDGET_COLUMNS, problems):
        errors: list[str] = []
        if row["institution"] not in institutions:
            errors.append(f"budget of unknown institution {row['institution']!r}")
        year = _number(row["year"], int, "year", errors)
        if year is not None and not 2000 <= year <= 2100:
            errors.append(f"year {year} out of range")
        if row["kind"] not in BUDGET_KINDS:
            errors.append(f"unknown kind {row['kind']!r} (known: {', '.join(BUDGET_KINDS)})")
        yuan = _number(row["yuan"], float, "yuan", errors)
        key = (row["institution"], year or 0, row["kind"])
        if key in first:
            errors.append(f"a second budget for {key[0]} {key[1]} {key[2]} (first on line {first[key]})")
        if errors:
            problems.extend(Problem(path.name, line, e) for e in errors)
            continue
        first[key] = line
        budgets[key] = float(yuan)
    return budgets


def load_registry(directory: Path, cities: Mapping[str, str] | None = None) -> tuple[Registry, list[Problem]]:
    """Load what is valid and return it with the list of every problem found."""
    if not directory.is_dir():
        raise RegistryError(f"registry directory not found: {directory}")
    for required in ("institutions.csv", "devices.csv"):
        if not (directory / required).is_file():
            raise RegistryError(f"registry file missing: {directory / required}")
    problems: list[Problem] = []
    institutions = _load_table(directory / "institutions.csv", INSTITUTION_COLUMNS, "id",
                               _institution_builder(cities or DEFAULT_CITIES), problems)
    devices = _load_table(directory / "devices.csv", DEVICE_COLUMNS, "id",
                          _device_builder(institutions), problems)
    cards_path = directory / "cards.csv"
    cards = (_load_table(cards_path, CARD_COLUMNS, "card", _card_builder(institutions), problems)
             if cards_path.is_file() else {})
    quotas_path = directory / "quotas.toml"
    quotas = _load_quotas(quotas_path, problems) if quotas_path.is_file() else {}
    tariffs_path = directory / "tariffs.toml"
    tariffs = None
    if tariffs_path.is_file():
        tariffs, tariff_problems = load_tariffs(tariffs_path.read_text(encoding="utf-8"), cities or DEFAULT_CITIES,
                                                INSTITUTION_TYPES)
        problems += tariff_problems
    budgets_path = directory / "budgets.csv"
    budgets = _load_budgets(budgets_path, institutions, problems) if budgets_path.is_file() else {}
    contacts_path = directory / "contacts.csv"
    contacts = (_load_table(contacts_path, CONTACT_COLUMNS, "id",
                            _contact_builder(cities or DEFAULT_CITIES, institutions), problems)
                if contacts_path.is_file() else {})
    return Registry(institutions, devices, cards, quotas, tariffs, budgets, contacts), problems
