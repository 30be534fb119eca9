"""``meterwatch analyze --no-publish`` writes to the store only: no robot or webhook hears anything."""

from __future__ import annotations

import asyncio
import sys

from tests.analytics.robots import robot_server
from tests.helpers import tiny_registry


async def _analyze(tmp_path, *flags: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meterwatch_cli.main", "--config", str(tmp_path / "mw.toml"), "analyze", "--once",
        *flags, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode()


async def test_no_publish_sends_nothing_to_webhooks_or_robots(tmp_path):
    tiny_registry(tmp_path / "registry")  # devices that never spoke: silent alerts open
    async with robot_server() as robot:
        (tmp_path / "registry" / "contacts.csv").write_text(
            "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
            f"ops,运维,webhook,{robot.base}/contact,province,*,info,\n", encoding="utf-8")
        (tmp_path / "mw.toml").write_text(
            f'registry = "registry"\nstore = "duckdb://mw.duckdb"\n[analytics]\nstate_file = "alerts.json"\n'
            f'delivery_wait_s = 2\n'
            f'[[analytics.notifiers]]\nkind = "webhook"\nurl = "{robot.base}/hook"\n'
            f'[[analytics.notifiers]]\nkind = "dingtalk"\nurl = "{robot.base}/robot/send?access_token=T"\n',
            encoding="utf-8")
        code, out = await _analyze(tmp_path, "--no-publish")
        assert code == 0, out[-2000:]
        assert "event(s)" in out and " 0 event(s)" not in out, out[-2000:]  # alerts were raised
        assert robot.got == []
        (tmp_path / "alerts.json").unlink()  # afresh, published: the same alerts open, and the contact hears
        (tmp_path / "mw.duckdb").unlink()
        code, out = await _analyze(tmp_path)  # (no broker here: the MQTT notifier fails, retried in 2 s)
        assert [g["path"] for g in robot.got if g["path"] == "/contact"] == ["/contact"], out[-2000:]
