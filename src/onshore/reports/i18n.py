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
    "outbound.since_previous_year.transfers_released": (
        "自上年1月1日起出境传输次数",
        "transfers released since 1 January of the previous year",
    ),
    "outbound.since_previous_year.records": (
        "自上年1月1日起出境记录",
        "records abroad since 1 January of the previous year",
    ),
    "outbound.since_previous_year.people_pi": (
        "自上年1月1日起出境个人信息涉及人数（按次累计）",
        "people (PI) since 1 January of the previous year (summed per transfer)",
    ),
    "outbound.since_previous_year.people_sensitive": (
        "自上年1月1日起出境敏感个人信息涉及人数（按次累计）",
        "people (sensitive PI) since 1 January of the previous year (summed per transfer)",
    ),
    "risk.incidents_open": ("尚未处置完毕的安全事件", "security incidents not yet closed"),
    "risk.complaints_open": ("尚未处理完毕的投诉", "complaints not yet closed"),
}
# The risk assessment's checks: the value each is read from, the risk when it is observed, the countermeasure.
# Operational wording, not law: which risks the law asks about is the pack's `reports.risk` items.
RISK_CHECKS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "important_records": (
        ("在境内保存重要数据", "important data held in the country"),
        (
            "仅存储于境内区域；出境须经评估并在出境口记录",
            "stored in in-country regions only; abroad only through the gate, with an assessment",
        ),
    ),
    "risk.incidents_open": (
        ("安全事件尚未处置完毕", "security incidents still open"),
        ("完成处置并在事件登记中关闭", "finish the handling and close them in the incident register"),
    ),
    "incidents.people_affected": (
        ("安全事件影响到个人", "security incidents affected people"),
        ("告知受影响的个人并报告主管部门", "inform the people affected and report to the authority"),
    ),
    "rights.pending_overdue": (
        ("个人权利请求超期未处理", "data subjects' requests past their deadline"),
        ("立即处理，并复核请求队列", "handle them now and review the request queue"),
    ),
    "rights.handled_late": (
        ("个人权利请求超期处理", "requests handled after their deadline"),
        ("缩短处理流程，按工作日期限跟踪", "shorten the handling, track the working-day deadline"),
    ),
    "risk.complaints_open": (
        ("用户投诉尚未处理完毕", "complaints still open"),
        ("答复投诉人并在投诉登记中关闭", "answer the complainants and close them in the register"),
    ),
    "outbound.denials": (
        ("有超出依据范围的出境请求（已被拒绝）", "transfers asked beyond a basis (refused at the border)"),
        ("复核请求方的需求；需要时申请相应的出境依据", "review what was asked; obtain a basis where it is needed"),
    ),
    "collect.dropped_no_consent": (
        ("车辆发送了未经同意的个人信息（未收集）", "vehicles sent personal data without consent (not collected)"),
        ("在车端默认不收集，复核车辆配置", "default to no collection in the vehicle; review its configuration"),
    ),
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
    "receiver": ("接收方", "Recipient"),
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
    "access_records": ("您的副本中的记录（账本存证）", "records in your copy (attested in the ledger)"),
    "risk_title": ("风险", "Risk"),
    "countermeasure": ("应对措施", "Countermeasure"),
    "observed": ("存在", "observed"),
    "not_observed": ("未发现", "not observed"),
    "ledger_derived": ("来自账本", "from the ledger"),
    "store_derived": ("来自存储（描述性，不核验）", "from the stores (descriptive, not verified)"),
    "derivation": ("来源", "Derived"),
    "subject": ("个人", "Person"),
    "time": ("时间", "Time"),
    "signal": ("信号", "Signal"),
    "data_value": ("内容", "Value"),
    "level": ("同意级别", "Consent level"),
    "granted": ("授予日期", "Granted"),
    "expires": ("到期日期", "Expires"),
    "withdrawn": ("撤回日期", "Withdrawn"),
    "until_withdrawn": ("直至撤回", "until withdrawn"),
    "first": ("最早", "First"),
    "vehicle": ("车辆（假名）", "Vehicle (pseudonym)"),
    "binding_role": ("身份", "Role"),
    "since": ("起", "From"),
    "until": ("止", "Until"),
    "last": ("最近", "Last"),
    "access_title": ("个人信息副本", "Copy of your personal information"),
    "records_cut": (
        "仅列出前 {shown} 条记录（共 {total} 条）；完整的机器可读副本：POST /v1/subjects/{subject}/access。",
        "Only the first {shown} of {total} records are listed; the complete machine-readable copy: "
        "POST /v1/subjects/{subject}/access.",
    ),
    "no_vin": (
        "车辆以假名标识（不含车辆识别代号）。",
        "Vehicles are named by a pseudonym (never their VIN).",
    ),
    "declare_by": ("须在此日期前申报", "Declare by"),
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
    if key.startswith("access."):
        return f"{key.split('.')[1]}: {word('access_records', lang)}"
    return key


def risk_text(check: str, lang: str) -> tuple[str, str]:
    """The risk a check finds and its countermeasure, in ``lang``."""
    (risk_zh, risk_en), (measure_zh, measure_en) = RISK_CHECKS[check]
    return (risk_zh, measure_zh) if lang == "zh" else (risk_en, measure_en)


def confidence_text(tag: str, lang: str) -> str:
    return word({"U": "unconfirmed", "S": "secondary"}.get(tag, "confirmed"), lang)
