"""An item guide as a printable document: title, sections, a materials checklist with ☐
boxes, where, when, fees and phone. Pure data: the devices lay it out for the thermal
printer and for A4.
"""

from dataclasses import dataclass, field

from kiosq.content.model import ItemGuide, Material

KIND = {"zh": {"original": "原件", "copy": "复印件", "original_and_copy": "原件及复印件"},
        "en": {"original": "original", "copy": "copy", "original_and_copy": "original and copy"}}
WORDS = {
    "zh": {"subtitle": "办事指南", "basis": "设定依据", "conditions": "申请条件", "materials": "申请材料",
           "steps": "办理流程", "time": "办理时限", "fees": "收费标准", "where": "办理地点", "phone": "咨询电话",
           "online": "到现场次数", "legal": "法定时限 {n} 个工作日", "promised": "承诺时限 {n} 个工作日",
           "on_the_spot": "即办", "free": "不收费", "copies": "{n} 份", "optional": "（如有）",
           "kiosk": "可在自助终端申报", "service": "取号业务 {s}"},
    "en": {"subtitle": "Item guide", "basis": "Legal basis", "conditions": "Who may apply",
           "materials": "What to bring", "steps": "Procedure", "time": "Time limit", "fees": "Fees",
           "where": "Where", "phone": "Enquiries",
           "online": "Visits needed", "legal": "legal limit {n} working days", "promised": "promised {n} working days",
           "on_the_spot": "on the spot", "free": "free of charge", "copies": "{n} cop(ies)", "optional": " (if any)",
           "kiosk": "can be filed at a self-service terminal", "service": "ticket service {s}"},
}


@dataclass(frozen=True)
class Check:
    """A line of the materials checklist, printed with a ☐ box."""

    text: str
    note: str = ""


@dataclass(frozen=True)
class Section:
    heading: str
    lines: list[str] = field(default_factory=list)
    checklist: list[Check] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    code: str
    sections: list[Section]
    lang: str = "zh"


def _material_line(m: Material, kinds: dict[str, str], w: dict[str, str], lang: str) -> str:
    copies, optional = w["copies"].format(n=m.count), "" if m.required else w["optional"]
    if lang == "zh":
        return f"{m.name}（{kinds[m.kind]}，{copies}）{optional}"
    return f"{m.name} ({kinds[m.kind]}, {copies}){optional}"


def guide_document(item: ItemGuide, lang: str = "zh") -> Document:
    w = WORDS[lang if lang in WORDS else "zh"]
    kinds = KIND[lang if lang in KIND else "zh"]
    materials = [Check(_material_line(m, kinds, w, lang), m.note) for m in item.materials]
    days = (w["on_the_spot"] if item.promised_days == 0 else w["promised"].format(n=item.promised_days))
    time_lines = [days, w["legal"].format(n=item.legal_days)] if item.legal_days else [days]
    fees = [f"{f.name} {f.amount} 元（{f.basis}）" if lang == "zh" else f"{f.name}: CNY {f.amount} ({f.basis})"
            for f in item.fees] or [w["free"]]
    where = [item.location, w["service"].format(s=item.service)] + ([w["kiosk"]] if item.form else [])
    sections = [
        Section(w["conditions"], [item.conditions]),
        Section(w["materials"], checklist=materials),
        Section(w["steps"], [f"{i}. {step}" for i, step in enumerate(item.steps, 1)]),
        Section(w["time"], time_lines),
        Section(w["fees"], fees),
        Section(w["where"], where),
        Section(w["phone"], [item.phone]),
        Section(w["online"], [item.online_level]),
        Section(w["basis"], list(item.basis)),
    ]
    title = item.name if lang == "zh" else item.name_en
    return Document(title=title, subtitle=f"{w['subtitle']} · {item.department}", code=item.code,
                    sections=sections, lang=lang)


def as_text(doc: Document, box: str = "☐") -> str:
    """The document as plain text lines (for previews and tests)."""
    out = [doc.title, doc.subtitle, doc.code, ""]
    for section in doc.sections:
        out.append(f"【{section.heading}】" if doc.lang == "zh" else f"[{section.heading}]")
        out += section.lines
        out += [f"{box} {c.text}" + (f" — {c.note}" if c.note else "") for c in section.checklist]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
