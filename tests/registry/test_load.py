import subprocess
import sys

from meterwatch_cli.main import main
from meterwatch.registry import load_registry
from simulators.province import generate_province, write_registry


def test_generated_province_is_clean(tmp_path):
    write_registry(generate_province(200, seed=3), tmp_path)
    registry, problems = load_registry(tmp_path)
    assert problems == [] and len(registry.institutions) == 200


def _write(tmp_path, institutions, devices, cards=None):
    (tmp_path / "institutions.csv").write_text("id,name,city,type,subclass,floor_area_m2,occupants\n" + institutions)
    (tmp_path / "devices.csv").write_text("id,institution,kind,unit,multiplier,address\n" + devices)
    if cards is not None:
        (tmp_path / "cards.csv").write_text("card,institution,zone,owner_unit,cleaner,category\n" + cards)


BAD_INSTITUTIONS = (
    "i1,一号楼,yinchuan,office,bureau,1000,50\n"       # line 2 ok
    "i2,二号楼,beijing,office,bureau,1000,50\n"         # line 3 unknown city
    "i3,三号楼,yinchuan,castle,bureau,1000,50\n"        # line 4 unknown type
    "i1,重复,yinchuan,office,bureau,1000,50\n"           # line 5 duplicate id
    "i/4,四号楼,yinchuan,office,bureau,1000,50\n"       # line 6 bad id characters
    "i5,五号楼,yinchuan,office,bureau,-3,many\n"        # line 7 bad numbers
)
BAD_DEVICES = (
    "d1,i1,water,m3,1,00000000000001\n"                 # line 2 ok
    "d2,i9,water,m3,1,\n"                               # line 3 unknown institution
    "d3,i1,water,kWh,1,\n"                              # line 4 bad unit
    "d4,i1,gas,m3,1,\n"                                 # line 5 unknown kind
    "d5,i1,electricity,kWh,1,123\n"                     # line 6 bad address
    "d1,i1,water,m3,1,\n"                               # line 7 duplicate
)


def test_every_bad_row_is_named_with_file_line_and_problem(tmp_path):
    _write(tmp_path, BAD_INSTITUTIONS, BAD_DEVICES, "c1,i1,z,u,p,compost\n")
    registry, problems = load_registry(tmp_path)
    found = {(p.file, p.line, p.message.split()[0] + " " + p.message.split()[1]) for p in problems}
    assert {("institutions.csv", 3, "unknown city"), ("institutions.csv", 4, "unknown type"),
            ("institutions.csv", 5, "duplicate id"), ("institutions.csv", 6, "bad id"),
            ("devices.csv", 3, "device of"), ("devices.csv", 4, "bad unit"), ("devices.csv", 5, "unknown kind"),
            ("devices.csv", 6, "bad address"), ("devices.csv", 7, "duplicate id"),
            ("cards.csv", 2, "unknown category")} <= found
    assert any(p.line == 7 and "floor_area_m2" in p.message for p in problems)
    assert any(p.line == 7 and "occupants" in p.message for p in problems)
    assert list(registry.institutions) == ["i1"] and list(registry.devices) == ["d1"]


def test_registry_check_command_exits_non_zero_and_prints_lines(tmp_path, capsys):
    _write(tmp_path, BAD_INSTITUTIONS, BAD_DEVICES)
    assert main(["registry", "check", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'institutions.csv'}:3: unknown city 'beijing'" in out
    assert f"{tmp_path / 'devices.csv'}:4: bad unit 'kWh' for a water device" in out


def test_registry_check_clean_exits_zero(tmp_path):
    write_registry(generate_province(20, seed=1), tmp_path)
    result = subprocess.run([sys.executable, "-m", "meterwatch_cli.main", "registry", "check", "--dir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 institutions" in result.stderr


def test_missing_directory_is_an_error(tmp_path, capsys):
    assert main(["registry", "check", "--dir", str(tmp_path / "nope")]) == 1
    assert "not found" in capsys.readouterr().err


def test_control_characters_in_any_text_column_are_refused_with_file_and_line(tmp_path, capsys):
    _write(tmp_path,
           'i1,一号楼,yinchuan,office,bureau,1000,50\n'
           '"i2","二号\n楼",yinchuan,office,bureau,1000,50\n'         # lines 3-4: a newline inside the name
           'i3,三号楼,yinchuan,office,"bu\treau",1000,50\n',          # line 5: a tab
           'd1,i1,water,m3,1,00000000000001\n'
           'd2,i1,scale,kg\x00,1,\n',                                 # line 3: NUL in the unit
           'c1,i1,"z\nevil,x=1 f=1 1",u,p,recyclable\n'               # lines 2-3: line protocol injection
           'c2,i1,zone-2,u\u2028v,p,recyclable\n'                     # line 4: a line separator
           'c3,i1,zone-3,u,保洁员\\,recyclable\n'                      # line 5: trailing backslash
           'c4,i1,zone-4,u,p,recyclable\n')                           # line 6: fine
    registry, problems = load_registry(tmp_path)
    found = {(p.file, p.line, p.message.split(":")[0]) for p in problems
             if "character" in p.message or "backslash" in p.message}
    assert found == {("institutions.csv", 3, "name"), ("institutions.csv", 5, "subclass"),
                     ("devices.csv", 3, "unit"), ("cards.csv", 2, "zone"), ("cards.csv", 4, "owner_unit"),
                     ("cards.csv", 5, "cleaner")}
    assert "U+000A (line feed)" in next(p.message for p in problems if p.line == 2 and p.file == "cards.csv")
    assert "ends with a backslash" in next(p.message for p in problems if p.line == 5 and p.file == "cards.csv")
    assert list(registry.institutions) == ["i1"] and list(registry.devices) == ["d1"] and list(registry.cards) == ["c4"]
    assert main(["registry", "check", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'cards.csv'}:2: zone: control or invisible character U+000A (line feed) at position 2" in out
    assert f"{tmp_path / 'devices.csv'}:3: unit: control or invisible character U+0000 (null) at position 3" in out


def test_platform_id_column_maps_platform_devices_and_refuses_duplicates(tmp_path, capsys):
    (tmp_path / "institutions.csv").write_text("id,name,city,type,subclass,floor_area_m2,occupants\n"
                                               "i1,一号楼,yinchuan,office,bureau,1000,50\n")
    (tmp_path / "devices.csv").write_text(
        "id,institution,kind,unit,multiplier,address,platform_id\n"
        "d1,i1,water,m3,1,00000000000001,40edca19b0124480864366de4621de99\n"  # line 2: a CTWing deviceId
        "d2,i1,electricity,kWh,1,000000000001,524552229\n"                    # line 3: a OneNET dev_id
        "d3,i1,water,m3,1,,\n"                                                # line 4: not on a platform
        "d4,i1,water,m3,1,,524552229\n"                                       # line 5: d2's id again
        "d5,i1,water,m3,1,,bad id\n")                                         # line 6: a space
    registry, problems = load_registry(tmp_path)
    assert {d: registry.by_platform_id[d].id for d in registry.by_platform_id} == {
        "40edca19b0124480864366de4621de99": "d1", "524552229": "d2"}
    assert [(p.line, p.message) for p in problems] == [
        (5, "duplicate platform_id '524552229' (also device 'd2')"),
        (6, "bad platform_id 'bad id': 1-128 characters of A-Z a-z 0-9 _ . : -")]
    assert main(["registry", "check", "--dir", str(tmp_path)]) == 1
    assert f"{tmp_path / 'devices.csv'}:5: duplicate platform_id '524552229'" in capsys.readouterr().out


def test_devices_csv_without_platform_id_still_loads(tmp_path):
    _write(tmp_path, "i1,一号楼,yinchuan,office,bureau,1000,50\n", "d1,i1,water,m3,1,00000000000001\n")
    registry, problems = load_registry(tmp_path)
    assert problems == [] and registry.devices["d1"].platform_id == "" and registry.by_platform_id == {}


def test_fast_paths_keep_every_check_a_backslash_inside_is_fine_short_and_long_rows_named(tmp_path):
    """The load checks whole rows at C speed first (240,000 devices); what the per-value checks said stays said."""
    _write(tmp_path,
           'i1,一号\\楼,yinchuan,office,bureau,1000,50\n'              # line 2: a backslash inside is fine
           '\n'                                                         # line 3: blank, skipped
           'i2,二号楼,yinchuan,office,bureau,1000\n'                    # line 4: a field short
           'i3,三号楼,yinchuan,office,bureau,1000,50,extra\n'           # line 5: a field too many
           '"i4","四号\r\n楼",yinchuan,office,bureau,1000,50\n'         # lines 6-7: CRLF inside a quoted name
           'i5,五号楼,yinchuan,office,bureau,1000,50\n',                # line 8: fine
           'd1,i1,water,m3,1,00000000000001\n')
    registry, problems = load_registry(tmp_path)
    assert [(p.file, p.line, p.message.split(":")[0]) for p in problems] == [
        ("institutions.csv", 4, "wrong number of fields"), ("institutions.csv", 5, "wrong number of fields"),
        ("institutions.csv", 6, "name")]
    assert "U+000D (carriage return)" in problems[2].message
    assert list(registry.institutions) == ["i1", "i5"] and registry.institutions["i1"].name == "一号\\楼"
