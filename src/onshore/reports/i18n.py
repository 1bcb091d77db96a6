"""The reports' words in Chinese and English: figure labels, headings, column names. Law's wording is in the pack."""

from __future__ import annotations

LANGS = ("zh", "en")

FIGURES: dict[str, tuple[str, str]] = {
    "collect.received": ("接收的数据条目", "data items received"),
    "collect.dropped_no_consent": ("因无同意而未收集的条目", "items not collected for want of consent"),
    "store.records_stored": ("存储的记录", "records stored"),
    "frames.received": ("接收的摄像头图像", "camera frames received"),
    "consent.granted": ("授予的同意", "consents granted"),
    "consent.withdrawn": ("撤回的同意", "consents withdrawn"),
    "delete.records_retention": ("保存期满删除的记录", "records deleted at the end of retention"),
    "delete.records_erasure": ("应个人请求删除的记录", "records erased on request"),
    "provision.entries": ("向境内第三方提供（项）", "provisions to third parties in the country"),
    "provision.people": ("涉及人数", "people concerned"),
    "provision.records": ("提供的记录", "records provided"),
    "incidents.count": ("安全事件", "security incidents"),
    "incidents.closed": ("已处置完毕的事件", "incidents closed"),
    "incidents.people_affected": ("受影响人数", "people affected"),
    "incidents.reported": ("已报告主管部门的事件", "incidents reported to the authority"),
    "complaints.count": ("用户投诉", "user complaints"),
    "complaints.closed": ("已处理完毕的投诉", "complaints closed"),
    "complaints.about_transfer": ("涉及出境的投诉", "complaints about transfers abroad"),
    "rights.requests": ("个人权利请求", "data subjects' requests"),
    "rights.erasure_requests": ("其中删除请求", "of which erasure requests"),
    "rights.handled": ("已处理的请求", "requests handled"),
    "rights.handled_within_deadline": ("期限内处理", "handled within the deadline"),
    "rights.handled_late": ("超期处理", "handled after the deadline"),
    "rights.pending": ("待处理的请求", "requests pending"),
    "rights.pending_overdue": ("已超期的待处理请求", "pending past their deadline"),
    "outbound.transfers_released": ("出境传输次数", "transfers released abroad"),
    "outbound.records": ("出境记录", "records provided abroad"),
    "outbound.people_pi": ("出境个人信息涉及人数（按次累计）", "people, personal information (summed per transfer)"),
    "outbound.people_sensitive": ("出境敏感个人信息涉及人数（按次累计）", "people, sensitive PI (summed per transfer)"),
    "outbound.denials": ("被拒绝的出境请求", "transfer requests refused (wholly or partly)"),
    "outbound.records_refused": ("被拒绝的记录", "records refused"),
    "outbound.imported_rows": ("导入的历史出境记录（人次）", "earlier transfers imported (person-dates)"),
}
BASIS_FIGURES = {
    "releases": ("传输次数", "releases"),
    "records": ("记录", "records"),
    "people_pi": ("个人信息人数", "people (PI)"),
    "people_sensitive": ("敏感个人信息人数", "people (sensitive PI)"),
}

WORDS: dict[str, tuple[str, str]] = {
    "year": ("年度", "Year"),
    "as_of": ("截至", "As of"),
    "due": ("报送期限", "Due"),
    "recipient": ("报送对象", "Filed with"),
    "generated": ("生成时间", "Generated"),
    "processor": ("汽车数据处理者", "Processor"),
    "province": ("注册地省份", "Province of registration"),
    "ciio": ("关键信息基础设施运营者", "Critical information infrastructure operator"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "responsible": ("数据安全负责人", "Person in charge of data security"),
    "rights_contact": ("用户权益事务联系人", "User-rights contact"),
    "contact": ("联系方式", "contact"),
    "confidence": ("依据可信度", "Confidence of the legal basis"),
    "unconfirmed": (
        "［U］未经核实：条文最终文本未检索到，按回忆与草案整理",
        "[U] unconfirmed: final text not retrieved; recalled and checked against the draft",
    ),
    "secondary": ("［S］二手来源", "[S] secondary source"),
    "confirmed": ("［C］已确认", "[C] confirmed"),
    "figure": ("指标", "Figure"),
    "key": ("编号", "Key"),
    "value": ("数值", "Value"),
    "region": ("区域", "Region"),
    "location": ("存储地点", "Storage place"),
    "jurisdiction": ("法域", "Jurisdiction"),
    "categories": ("类别", "Categories"),
    "purpose": ("目的", "Purpose"),
    "records": ("记录数", "Records"),
    "people": ("人数", "People"),
    "retention": ("保存期限规则", "Retention rules"),
    "rule": ("规则", "Rule"),
    "days": ("天数", "Days"),
    "source": ("依据", "Source"),
    "status": ("状态", "Status"),
    "date": ("日期", "Date"),
    "kind": ("类型", "Kind"),
    "deadline": ("期限", "Deadline"),
    "handled": ("处理日期", "Handled"),
    "title": ("事项", "What"),
    "handling": ("处置情况", "Handling"),
    "closed": ("结束日期", "Closed"),
    "basis": ("出境依据", "Basis"),
    "route": ("途径", "Route"),
    "destinations": ("目的地", "Destinations"),
    "storage_abroad": ("境外存储地点", "Storage abroad"),
    "period_abroad": ("境外存储期限", "Period abroad"),
    "scope": ("范围", "Scope"),
    "transfer": ("传输", "Transfer"),
    "reasons": ("理由", "Reasons"),
    "none": ("无", "none"),
    "checkpoint": ("账本检查点", "Ledger checkpoint"),
    "checkpoint_text": (
        "本报告的全部指标由下列已签名账本检查点之前的事件计算得出；可用 `onshore report verify` 复核。",
        "Every figure of this report is computed from the events before the signed ledger checkpoints below; "
        "`onshore report verify` recomputes them.",
    ),
    "size": ("树大小", "tree size"),
    "root": ("根哈希", "root hash"),
    "figures_appendix": ("附：指标一览（供核验）", "Appendix: all figures (for verification)"),
    "chart_monthly": ("按类别和月份的存储记录", "Records stored by category and month"),
    "chart_thresholds": ("出境人数与门槛", "People provided abroad against the thresholds"),
    "inventory_title": ("数据清单（处理活动记录）", "Data inventory (record of processing)"),
    "marked_u": (
        "标注［U］的事项依据未经核实的条文内容，仅供参考。",
        "Items marked [U] rest on unconfirmed wording and are shown as such.",
    ),
}


def word(key: str, lang: str) -> str:
    zh, en = WORDS[key]
    return zh if lang == "zh" else en


def figure_label(key: str, lang: str) -> str:
    """The label of a figure key (per-basis keys included)."""
    if key in FIGURES:
        zh, en = FIGURES[key]
        return zh if lang == "zh" else en
    if key.startswith("outbound.basis."):
        basis, _, name = key.removeprefix("outbound.basis.").rpartition(".")
        zh, en = BASIS_FIGURES.get(name, (name, name))
        return f"{basis}: {zh if lang == 'zh' else en}"
    return key


def confidence_text(tag: str, lang: str) -> str:
    return word({"U": "unconfirmed", "S": "secondary"}.get(tag, "confirmed"), lang)
