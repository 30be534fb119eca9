"""Names and units of the contract, in one place."""

from __future__ import annotations

from typing import Final

INSTITUTION_TYPES: Final[dict[str, str]] = {
    "office": "党政机关",
    "education": "教育",
    "medical": "医疗",
    "justice": "公检法",
    "venue": "大型场馆",
}

DEFAULT_CITIES: Final[dict[str, str]] = {
    "yinchuan": "银川",
    "shizuishan": "石嘴山",
    "wuzhong": "吴忠",
    "guyuan": "固原",
    "zhongwei": "中卫",
}

# Device kind -> units a meter of that kind may report in.  Heat meters are
# read in GJ in most of China; some older ones count kWh.
KIND_UNITS: Final[dict[str, tuple[str, ...]]] = {
    "water": ("m3",),
    "electricity": ("kWh",),
    "heat": ("GJ", "kWh"),
    "scale": ("kg",),
}
METER_KINDS: Final[frozenset[str]] = frozenset({"water", "electricity", "heat"})

GARBAGE_CATEGORIES: Final[dict[str, str]] = {
    "recyclable": "可回收物",
    "hazardous": "有害垃圾",
    "kitchen": "厨余垃圾",
    "other": "其他垃圾",
}
UNKNOWN: Final[str] = "unknown"

TOPIC_ROOT: Final[str] = "meterwatch"
UP_PREFIX: Final[str] = f"{TOPIC_ROOT}/up"
ALERT_TOPIC: Final[str] = f"{TOPIC_ROOT}/alerts/{{institution}}"
STATUS_TOPIC: Final[str] = f"{TOPIC_ROOT}/status/{{component}}"
ACK_TOPIC: Final[str] = f"{TOPIC_ROOT}/ack/alerts"  # operators: {"id": "<alert id>", "by": "<name>"}

SEVERITIES: Final[tuple[str, ...]] = ("info", "warning", "critical")  # of alerts, lowest first
CONTACT_CHANNELS: Final[tuple[str, ...]] = ("dingtalk", "wecom", "email", "webhook", "sms_webhook")  # contacts.csv
