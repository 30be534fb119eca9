"""contacts.csv: who hears of which alerts; every bad route named with file:line, secrets refused."""

from __future__ import annotations

from meterwatch_cli.main import main
from meterwatch.registry import Contact, load_registry
from tests.helpers import tiny_registry

HEADER = "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
ROWS = (
    "yc-ops,银川运维,dingtalk,https://oapi.dingtalk.com/robot/send?access_token=T1,city:yinchuan,leak|burst,warning,22:00-07:00\n"  # 2 ok
    "mail,能源科,email,energy@nx.gov.cn,province,*,critical,\n"                                  # 3 ok
    "sms,值班,sms_webhook,http://sms.local/send?to=13800000000,institution:inst-a,*,,\n"        # 4 ok, severity: info
    "fax,传真,fax,http://x/,province,*,info,\n"                                                # 5 unknown channel
    "bad-scope,x,webhook,http://x/,county:1,*,info,\n"                                          # 6 bad scope
    "no-city,x,webhook,http://x/,city:beijing,*,info,\n"                                        # 7 unknown city
    "bad-rule,x,webhook,http://x/,province,leak|Leak Rule,info,\n"                              # 8 bad rule name
    "bad-sev,x,webhook,http://x/,province,*,urgent,\n"                                          # 9 bad severity
    "bad-quiet,x,webhook,http://x/,province,*,info,22:00-25:00\n"                               # 10 bad quiet hours
    "bad-mail,x,email,energy-at-nx.gov.cn,province,*,info,\n"                                   # 11 not an email
    "ftp,x,webhook,ftp://x/file,province,*,info,\n"                                             # 12 not http(s)
    "signed,x,dingtalk,https://oapi.dingtalk.com/robot/send?access_token=T2&secret=SEC1,province,*,info,\n"  # 13 secret
    "pw,x,webhook,https://u:PW2@x.example/hook,province,*,info,\n"                              # 14 password
    "mail,dup,email,a@b.cn,province,*,info,\n"                                                  # 15 duplicate id
    "no-inst,x,webhook,http://x/,institution:inst-z,*,info,\n"                                  # 16 unknown institution
)


def _registry(tmp_path):
    tiny_registry(tmp_path)
    (tmp_path / "contacts.csv").write_text(HEADER + ROWS, encoding="utf-8")
    return load_registry(tmp_path)


def test_contacts_are_loaded_and_every_bad_route_is_named(tmp_path):
    registry, problems = _registry(tmp_path)
    assert registry.contacts["yc-ops"] == Contact(
        "yc-ops", "银川运维", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=T1", "city", "yinchuan",
        ("leak", "burst"), "warning", (22 * 60, 7 * 60))
    assert registry.contacts["mail"].rules == () and registry.contacts["mail"].scope == "province"
    assert registry.contacts["sms"].min_severity == "info" and registry.contacts["sms"].quiet is None
    assert sorted(registry.contacts) == ["mail", "sms", "yc-ops"]
    said = {(p.file, p.line): p.message for p in problems}
    expected = {5: "unknown channel 'fax'", 6: "bad scope 'county:1'", 7: "unknown city 'beijing'",
                8: "bad rules 'leak|Leak Rule'", 9: "bad min_severity 'urgent'", 10: "bad quiet_hours '22:00-25:00'",
                11: "is not an email address", 12: "is not an http(s) URL", 13: "holds a secret",
                14: "holds a secret", 15: "duplicate id 'mail'", 16: "unknown institution 'inst-z'"}
    for line, words in expected.items():
        assert words in said.get(("contacts.csv", line), ""), (line, said.get(("contacts.csv", line)))
    assert len(problems) == len(expected)
    assert not any("SEC1" in p.message or "PW2" in p.message for p in problems)  # secrets not repeated


def test_registry_check_names_contacts_lines(tmp_path, capsys):
    _registry(tmp_path)
    assert main(["registry", "check", "--dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert f"{tmp_path / 'contacts.csv'}:5: unknown channel 'fax'" in out
    assert "3 contacts loaded; 12 problem(s)" in err
