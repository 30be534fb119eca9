
from meterwatch_cli.main import main
from meterwatch.settings import load_settings, redact_url


def test_settings_file_then_environment(tmp_path, monkeypatch):
    config = tmp_path / "mw.toml"
    config.write_text('broker = "mqtt://file:1883"\nstore = "duckdb:///f.duckdb"\n'
                      '[collector]\nbatch_size = 77\n')
    monkeypatch.setenv("METERWATCH_STORE", "influxdb://env:8086/mw")
    monkeypatch.setenv("METERWATCH_COLLECTOR__BATCH_INTERVAL_S", "2.5")
    monkeypatch.setenv("METERWATCH_BROKER_PASSWORD", "s3cret")
    s = load_settings(config)
    assert s.broker == "mqtt://file:1883" and s.store == "influxdb://env:8086/mw"
    assert s.collector.batch_size == 77 and s.collector.batch_interval_s == 2.5
    assert s.broker_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.model_dump())


def test_bad_setting_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / "mw.toml"
    config.write_text("[collector]\nbatch_size = -1\n")
    assert main(["--config", str(config), "registry", "check"]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.toml"), "registry", "check"]) == 2


def test_redact_url_hides_password():
    assert redact_url("influxdb://u:pw@host:8086/db") == "influxdb://u:***@host:8086/db"
    assert redact_url("mqtt://host:1883") == "mqtt://host:1883"
