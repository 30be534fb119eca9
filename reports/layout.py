"""What the xlsx sheets and the pdf pages show of a report: sections, their tables, headers with units, charts.

One home for the presentation of the figures: ``sections(report)`` turns the model's dict
(``reports.model.build``) into sections of blocks (a titled table with typed columns and, maybe, a chart);
``reports.xlsx`` and ``reports.pdf`` only draw them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meterwatch.const import DEFAULT_CITIES, GARBAGE_CATEGORIES, INSTITUTION_TYPES

Fmt = str  # text, num (1 decimal), yuan (2 decimals), int, pct (a change: +x.x%), share (x.x%), ratio (x.xxx), auto


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # Chinese, with the unit
    fmt: Fmt = "num"


@dataclass(frozen=True)
class Chart:
    kind: str  # column, bar, pie
    title: str
    category: str  # column key of the labels
    values: tuple[str, ...]  # column keys of the series
    max_rows: int = 12


@dataclass
class Block:
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str = ""  # why the table is empty, or how to read it
    chart: Chart | None = None


@dataclass
class Section:
    key: str
    sheet: str  # xlsx sheet name (31 characters at most)
    title: str
    blocks: list[Block] = field(default_factory=list)


QUANTITY_CN = {"electricity_kwh": ("用电量", "kWh"), "water_m3": ("用水量", "m³"), "heat_gj": ("用热量", "GJ"),
               "energy_kgce": ("综合能耗", "kgce"), "cost_yuan": ("能源费用", "元"), "kgco2e": ("碳排放", "kgCO₂e")}
KIND_CN = {"electricity": "电", "heat": "热"}
CHECK_UNIT_CN = {"days": "天", "readings": "条", "ratio": "", "kgce/m2": "kgce/m²", "": ""}


def _change(now: float | None, before: float | None) -> float | None:
    return now / before - 1.0 if now is not None and before else None


def _place(row: dict[str, Any]) -> dict[str, Any]:
    """Chinese names of the city and type beside the ids."""
    return {**row, "city_cn": DEFAULT_CITIES.get(row.get("city", ""), row.get("city", "")),
            "type_cn": INSTITUTION_TYPES.get(row.get("type", ""), row.get("type", ""))}


def totals(report: dict[str, Any]) -> Section:
    this, prev, last = report["totals"], report["totals_previous"], report["totals_last_year"]
    rows = []
    for key, (name, unit) in QUANTITY_CN.items():
        rows.append({"item": f"{name} ({unit})", "this": this[key], "previous": prev[key],
                     "pop": _change(this[key], prev[key]), "last_year": last[key], "yoy": _change(this[key], last[key])})
    for cat, kg in this["garbage_kg"].items():
        rows.append({"item": f"{GARBAGE_CATEGORIES.get(cat, '未登记卡')} (kg)", "this": kg,
                     "previous": prev["garbage_kg"][cat], "pop": _change(kg, prev["garbage_kg"][cat]),
                     "last_year": last["garbage_kg"][cat], "yoy": _change(kg, last["garbage_kg"][cat])})
    cols = [Column("item", "指标 (单位)", "text"), Column("this", f"本期 {report['period']}"),
            Column("previous", f"上期 {report['previous']['period']}"), Column("pop", "环比", "pct"),
            Column("last_year", f"去年同期 {report['last_year']['period']}"), Column("yoy", "同比", "pct")]
    chart = Chart("column", "综合能耗 kgce：本期、上期、去年同期", "item", ("this", "previous", "last_year"), 1)
    energy_first = [r for r in rows if r["item"].startswith("综合能耗")] + [r for r in rows
                                                                         if not r["item"].startswith("综合能耗")]
    return Section("totals", "1 总量", "一、总量分析 Totals", [Block("总量", cols, energy_first, chart=chart)])


def institutions(report: dict[str, Any]) -> Section:
    cols = [Column("institution", "单位编号", "text"), Column("name", "单位名称", "text"),
            Column("city_cn", "城市", "text"), Column("type_cn", "类型", "text")]
    cols += [Column(k, f"{n} ({u})", "yuan" if k == "cost_yuan" else "num") for k, (n, u) in QUANTITY_CN.items()]
    cols += [Column("energy_kgce_per_capita", "人均综合能耗 (kgce/人)", "ratio"),
             Column("energy_kgce_per_m2", "单位面积能耗 (kgce/m²)", "ratio"),
             Column("energy_yoy", "同比", "pct"), Column("energy_pop", "环比", "pct"), Column("garbage_kg", "垃圾 (kg)")]
    rows = [_place(r) for r in report["institutions"]]
    return Section("institutions", "2 单位明细", "二、单位明细 Institutions",
                   [Block("各单位本期数据", cols, rows, note="" if rows else "范围内没有单位")])


def structure(report: dict[str, Any]) -> Section:
    s = report["structure"]
    kind_cols = [Column("kind_cn", "能源品种", "text"), Column("energy_kgce", "综合能耗 (kgce)"),
                 Column("share", "占比", "share")]
    kinds = [{**r, "kind_cn": KIND_CN.get(r["kind"], r["kind"])} for r in s["by_kind"]]
    group_cols = [Column("group_cn", "分组", "text"), Column("energy_kgce", "综合能耗 (kgce)"),
                  Column("share", "占比", "share"), Column("electricity_kwh", "用电量 (kWh)"),
                  Column("water_m3", "用水量 (m³)"), Column("heat_gj", "用热量 (GJ)"), Column("cost_yuan", "费用 (元)", "yuan")]
    cities = [{**r, "group_cn": DEFAULT_CITIES.get(r["group"], r["group"])} for r in s["by_city"]]
    types = [{**r, "group_cn": r["type_cn"]} for r in s["by_type"]]
    return Section("structure", "3 结构", "三、结构分析 Structure", [
        Block("按能源品种", kind_cols, kinds, chart=Chart("pie", "综合能耗按品种", "kind_cn", ("energy_kgce",))),
        Block("按城市", group_cols, cities, chart=Chart("pie", "综合能耗按城市", "group_cn", ("energy_kgce",))),
        Block("按单位类型", group_cols, types, chart=Chart("pie", "综合能耗按单位类型", "group_cn", ("energy_kgce",)))])


def comparisons(report: dict[str, Any]) -> Section:
    c = report["comparisons"]
    cols = [Column("name", "单位名称", "text"), Column("type_cn", "类型", "text"), Column("city_cn", "城市", "text"),
            Column("energy_kgce", "综合能耗 (kgce)"), Column("energy_kgce_per_m2", "单位面积 (kgce/m²)", "ratio"),
            Column("energy_kgce_per_capita", "人均 (kgce/人)", "ratio"),
            Column("vs_type_median", "相对同类中位数 (倍)", "ratio"), Column("rank_type", "类型内排名", "int"),
            Column("rank_type_city", "同城同类排名", "int"), Column("rank_city", "市内排名", "int"), Column("yoy", "同比", "pct"), Column("pop", "环比", "pct")]
    why = "没有面积数据或没有能耗，无法排名"
    return Section("comparisons", "4 对比", "四、横纵对比 Comparisons (单位面积综合能耗，1 = 最低)", [
        Block("最优十家（相对同类中位数最低）", cols, [_place(r) for r in c["best"]], "" if c["best"] else why,
              Chart("bar", "最优十家：相对同类中位数", "name", ("vs_type_median",), 10)),
        Block("最差十家（相对同类中位数最高）", cols, [_place(r) for r in c["worst"]], "" if c["worst"] else why,
              Chart("bar", "最差十家：相对同类中位数", "name", ("vs_type_median",), 10)),
        Block("同比、环比变动（变动最大在前）", cols, [_place(r) for r in c["changes"]],
              "" if c["changes"] else "上期和去年同期都没有数据，无法计算变动")])


INDICATOR_CN = {"water": "用水 (m³)", "electricity": "用电 (kWh)", "energy": "综合能耗 (kgce)", "budget": "预算 (元)"}


def standing(report: dict[str, Any]) -> Section:
    cols = [Column("name", "单位名称", "text"), Column("indicator_cn", "指标 (单位)", "text"),
            Column("year_to_date", "年初至今"), Column("constraint", "约束值/预算"), Column("guide", "引导值"),
            Column("prorated", "进度值"), Column("projected", "预计全年"),
            Column("projected_share", "预计/约束值", "share"), Column("status_cn", "状态", "text"),
            Column("crossing", "预计超出日期", "text")]
    rows = [{**r, "indicator_cn": INDICATOR_CN.get(r["indicator"], r["indicator"])} for r in report["standing"]]
    note = "" if rows else "范围内没有单位有定额或预算（quotas.toml、tariffs.toml、budgets.csv）"
    return Section("standing", "5 定额预算", "五、定额与预算执行 Quota and budget standing",
                   [Block(f"截至 {report['end_local']} 的年度执行情况", cols, rows, note)])


def quality(report: dict[str, Any]) -> Section:
    cols = [Column("check_cn", "核查项", "text"), Column("name", "单位名称", "text"), Column("device", "表计", "text"),
            Column("figure", "数值", "auto"), Column("unit_cn", "单位", "text"), Column("why", "原因", "text")]
    rows = [{**r, "unit_cn": CHECK_UNIT_CN.get(r["unit"], r["unit"]),
             "figure": r["figure"] * 100 if r["unit"] == "ratio" and r["figure"] is not None else r["figure"]}
            for r in report["quality"]]
    rows = [{**r, "unit_cn": "%" if r["unit"] == "ratio" else r["unit_cn"]} for r in rows]
    return Section("quality", "6 质量控制", "六、统计质量控制 Verification list", [
        Block("请与单位核实的项目", cols, rows, "" if rows else "没有需要核实的项目")])


def alerts(report: dict[str, Any]) -> Section:
    cols = [Column("rule", "规则", "text"), Column("opened", "新开", "int"), Column("resolved", "已解决", "int"),
            Column("mean_hours_to_resolve", "平均解决时长 (小时)"), Column("open_at_end", "期末未解决", "int")]
    rows = report["alerts"]
    return Section("alerts", "7 告警", "七、告警 Alerts by rule", [
        Block("本期告警", cols, rows, "" if rows else "本期没有告警",
              Chart("column", "告警：新开、已解决、期末未解决", "rule", ("opened", "resolved", "open_at_end")))])


def garbage(report: dict[str, Any]) -> Section:
    g = report["garbage"]
    cats = [Column("category_cn", "类别", "text"), Column("kg", "重量 (kg)"), Column("share", "占比", "share"),
            Column("weighings", "称重次数", "int")]
    target = f"目标 {g['target_share']:.0%}"
    share = "-" if g["recyclable_share"] is None else f"{g['recyclable_share']:.1%}"
    blocks = [Block(f"按类别（可回收物占比 {share}，{target}）", cats, g["by_category"], g.get("why_empty", ""),
                    Chart("pie", "垃圾按类别", "category_cn", ("kg",))),
              Block("各单位可回收物占比（最低在前）", [
                  Column("name", "单位名称", "text"), Column("kg", "总重量 (kg)"), Column("recyclable_kg", "可回收物 (kg)"),
                  Column("recyclable_share", "可回收物占比", "share"), Column("below_target_cn", "低于目标", "text")],
                  [{**r, "below_target_cn": "是" if r["below_target"] else ""} for r in g["institutions"]])]
    for tag, name in (("zone", "区域"), ("owner_unit", "责任部门"), ("cleaner", "保洁员")):
        if f"by_{tag}" in g:
            blocks.append(Block(f"按{name}", [Column(tag, name, "text"), Column("kg", "重量 (kg)"),
                                             Column("recyclable_kg", "可回收物 (kg)"),
                                             Column("recyclable_share", "可回收物占比", "share"),
                                             Column("weighings", "称重次数", "int")], g[f"by_{tag}"]))
    blocks.append(Block("未登记的卡", [Column("institution", "单位编号", "text"), Column("scale", "秤", "text"),
                                     Column("kg", "重量 (kg)"), Column("weighings", "称重次数", "int")],
                        g["unknown_cards"], "" if g["unknown_cards"] else "没有未登记的卡"))
    return Section("garbage", "8 垃圾分类", "八、垃圾分类 Garbage sorting", blocks)


def sections(report: dict[str, Any]) -> list[Section]:
    return [totals(report), institutions(report), structure(report), comparisons(report), standing(report),
            quality(report), alerts(report), garbage(report)]


def cover_lines(report: dict[str, Any]) -> list[str]:
    """The cover's facts: scope, period, coverage, generation time (and the period not ended)."""
    lines = [f"范围 Scope：{report['scope_name']}（{report['scope']}，{report['institutions_in_scope']} 家单位）",
             f"统计期 Period：{report['period_cn']}（{report['period']}）",
             f"覆盖 Covers：{report['start_local']} 至 {report['end_local']}（北京时间 UTC+8）",
             f"对比 Compared with：上期 {report['previous']['period']}，去年同期 {report['last_year']['period']}",
             f"生成时间 Generated：{report['generated_local']}（UTC+8）"]
    if not report["ended"]:
        lines.insert(2, "本期尚未结束 Period not ended：数据截至生成时的 --at，上期和去年同期截取同样长度")
    return lines
