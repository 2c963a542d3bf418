"""A small catalog written for the tests: every field, two forms, and names chosen so
that each ranking rule has a case."""

import copy

import pytest

from kiosq.content.catalog import write_catalog
from kiosq.content.model import parse_catalog


def item(code, name, name_en, department="公安局", category="户籍与身份证", keywords=(), form=None, **extra):
    base = {
        "code": code, "name": name, "name_en": name_en, "department": department, "category": category,
        "type": "公共服务", "basis": ["《中华人民共和国居民身份证法》"],
        "conditions": "具有本市户籍的中国公民。",
        "materials": [{"name": "居民户口簿", "kind": "original", "count": 1, "required": True, "note": ""},
                      {"name": "近期免冠彩色照片", "kind": "original", "count": 2, "required": False,
                       "note": "现场采集的可不提供"}],
        "steps": ["申请人到窗口提交材料", "窗口审核并采集人像", "制证后领取"],
        "legal_days": 60, "promised_days": 30,
        "fees": [{"name": "工本费", "amount": "20.00",
                  "basis": "《国家发展改革委 财政部关于居民身份证收费标准及有关问题的通知》"}],
        "location": "一楼 1号窗口", "phone": "0571-12345", "online_level": "一次上门", "service": "A",
        "keywords": list(keywords), "form": form,
    }
    base.update(extra)
    return base


FORM = {"fields": [
    {"name": "applicant_name", "type": "text", "label": "申请人姓名", "label_en": "Applicant's name",
     "required": True, "max_length": 30, "prefill": "name"},
    {"name": "id_number", "type": "id_number", "label": "公民身份号码", "label_en": "ID number", "required": True,
     "prefill": "id_number"},
    {"name": "phone", "type": "phone", "label": "联系电话", "label_en": "Phone", "required": True},
    {"name": "reason", "type": "choice", "label": "换领原因", "label_en": "Reason", "required": True,
     "choices": [{"value": "expired", "label": "有效期满", "label_en": "Expired"},
                 {"value": "damaged", "label": "证件损坏", "label_en": "Damaged"}]},
    {"name": "rent", "type": "number", "label": "月租金（元）", "label_en": "Monthly rent (CNY)",
     "min": 1, "max": 100000},
    {"name": "start", "type": "date", "label": "起租日期", "label_en": "Lease start", "min": "2000-01-01"},
    {"name": "postcode", "type": "text", "label": "邮政编码", "label_en": "Postcode", "pattern": "[0-9]{6}"},
    {"name": "promise", "type": "checkbox", "label": "本人承诺所填内容真实", "label_en": "I confirm this is true",
     "required": True},
]}


def small_catalog() -> dict:
    return {"format": 1, "items": [
        item("GA-SFZ-001", "居民身份证换领", "Renewal of resident ID card", keywords=["换证", "身份证过期"], form=FORM),
        item("GA-SFZ-002", "居民身份证补领", "Replacement of a lost resident ID card", keywords=["身份证丢了", "补办"]),
        item("GA-SFZ-003", "临时居民身份证", "Temporary resident ID card", keywords=["临时身份证"]),
        item("GA-HJ-001", "户籍迁入", "Household registration: moving in", keywords=["户口", "落户"], fees=[],
             legal_days=20, promised_days=5),
        item("GA-CRJ-001", "普通护照签发", "Issue of an ordinary passport", category="出入境",
             keywords=["护照", "出国"], service="B",
             fees=[{"name": "护照费", "amount": "120.00",
                    "basis": "《关于降低电子普通护照等出入境证件收费标准的通知》"}]),
        item("GJJ-001", "住房公积金租房提取", "Provident fund withdrawal for rent", department="住房公积金管理中心",
             category="公积金提取", keywords=["公积金", "租房提取"], service="D", fees=[], form=FORM,
             basis=["《住房公积金管理条例》"], location="一楼 4号窗口"),
        item("MZ-HY-001", "结婚登记", "Marriage registration", department="民政局", category="婚姻登记",
             keywords=["结婚", "领证"], service="A", fees=[], legal_days=0, promised_days=0,
             basis=["《婚姻登记条例》"], conditions="男女双方自愿结婚，达到法定婚龄，无配偶。"),
        item("SC-DJ-001", "个体工商户设立登记", "Registration of an individual business", department="市场监督管理局",
             category="市场主体登记", keywords=["营业执照", "开店"], service="E", fees=[],
             basis=["《促进个体工商户发展条例》"]),
    ]}


@pytest.fixture
def catalog_data():
    return copy.deepcopy(small_catalog())


@pytest.fixture
def catalog_db(tmp_path):
    path = tmp_path / "catalog.sqlite"
    write_catalog(path, parse_catalog(small_catalog()))
    return path
