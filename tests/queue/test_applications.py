"""Applications in process (TestClient on a real SQLite file, the test's clock): the catalog,
filing, idempotency and provisional numbers, lookups and their throttling, the state
machine with supervisor approval, the staff list and its deadline filters, the figures."""

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from kiosq.queue.api import create_app

# Fictitious identities, as the card simulator's: area codes 9999xx belong to no province.
ID1, NAME1, PHONE1 = "999901199001010010", "测试一", "13812345678"
ID2, NAME2, PHONE2 = "999902198506150029", "测试二", "13987654321"
ID3 = "99990319601231019X"


@pytest.fixture
def tokens(store):
    return {"terminal": store.create_token("terminal", "T01"),
            "terminal2": store.create_token("terminal", "T02"),
            "staff": store.create_token("staff", "张敏", (1, 2)),  # services A, B
            "staff_c": store.create_token("staff", "王芳", (4,)),  # services C, D
            "supervisor": store.create_token("supervisor", "李科长", (1, 4)),
            "supervisor_b": store.create_token("supervisor", "赵科长", (3,)),  # service B only
            "duty": store.create_token("supervisor", "值班长"),  # no windows: the whole hall
            "admin": store.create_token("admin", "boss")}


@pytest.fixture
def client(store):
    with TestClient(create_app(store)) as c:
        yield c


def auth(secret, key=None):
    headers = {"Authorization": f"Bearer {secret}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def body(item="GA-SFZ-002", id_number=ID1, name=NAME1, phone=PHONE1, **extra):
    values = {
        "GA-SFZ-002": {"applicant_name": name, "id_number": id_number, "phone": phone, "reason": "expired",
                       "delivery": "window", "promise": True},
        "RS-SY-001": {"applicant_name": name, "id_number": id_number, "phone": phone, "last_employer": "示例公司",
                      "separation_date": "2026-10-31", "separation_reason": "contract_ended", "job_seeking": True,
                      "promise": True},
        "SW-006": {"applicant_name": name, "id_number": id_number, "period_start": "2025-01-01",
                   "period_end": "2025-12-31", "delivery": "print", "promise": True},
    }[item]
    return {"item": item, "applicant": {"id_number": id_number, "name": name, "phone": phone, "source": "card"},
            "values": values, **extra}


def file(client, tokens, key, terminal="terminal", **kwargs):
    return client.post("/api/applications", json=body(**kwargs), headers=auth(tokens[terminal], key))


def look(client, number, code, headers=None):
    """A citizen's lookup with the receipt's code."""
    return client.post(f"/api/applications/{number}/lookup", json={"code": code}, headers=headers)


def act(client, tokens, number, action, role="staff", note=None):
    return client.post(f"/api/applications/{number}/{action}", json={"note": note} if note else None,
                       headers=auth(tokens[role]))


# -- the catalog ----------------------------------------------------------------------


def test_items_with_their_forms(client):
    every = client.get("/api/items").json()
    fileable = client.get("/api/items?fileable=true").json()
    assert every["source"] == "sample" and len(every["items"]) == 70
    assert len(fileable["items"]) == 8 and all(i["fileable"] and i["form"] for i in fileable["items"])
    item = client.get("/api/items/GA-SFZ-002").json()
    assert (item["name"], item["promised_days"], item["legal_days"], item["service"]) == ("居民身份证换领", 20, 60, "A")
    assert [f["name"] for f in item["form"]["fields"]][:3] == ["applicant_name", "id_number", "phone"]
    missing = client.get("/api/items/XX-NOPE-1")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_the_catalog_reloads_from_an_installed_bundle(store, tmp_path):
    from kiosq.content import bundle
    from kiosq.content.catalog import SAMPLE, load_files
    from kiosq.queue.items import ItemCatalog

    catalog = ItemCatalog(store.path.parent)
    assert catalog.source == "sample" and (store.path.parent / "catalog.db").is_file()
    items = [i for i in load_files(SAMPLE) if i.fileable][:2]
    manifest = bundle.build(items, tmp_path / "built")
    bundle.install(manifest, store.path.parent / "content")
    assert catalog.get("GA-JZZ-002") is not None  # the old snapshot until reload()
    catalog.reload()
    assert catalog.source.startswith("bundle ") and [i.code for i in catalog.all()] == [i.code for i in items]


# -- filing ---------------------------------------------------------------------------


def test_file_an_application(client, tokens):
    r = file(client, tokens, "k1")
    assert r.status_code == 201, r.text
    out = r.json()
    # Monday 2026-11-23, 10:00: 20 working days -> Monday 21 Dec; 60 -> 2027-02-12 (no
    # 2027 holidays are built in; a hall adds them).
    assert out == {"tracking_no": "SQ20261123-0001", "status": "submitted", "promised_date": "2026-12-21",
                   "legal_date": "2027-02-15", "submitted_at": "2026-11-23T10:00:00+08:00", "item": "GA-SFZ-002",
                   "item_name": "居民身份证换领", "department": "公安局", "provisional_no": None,
                   "lookup_code": out["lookup_code"]}
    assert "Idempotent-Replayed" not in r.headers
    assert file(client, tokens, "k2", id_number=ID2, name=NAME2).json()["tracking_no"] == "SQ20261123-0002"


def test_numbers_restart_each_day(client, tokens, clock):
    file(client, tokens, "d1")
    clock.advance(days=1)
    assert file(client, tokens, "d2").json()["tracking_no"] == "SQ20261124-0001"


def test_same_key_same_application(client, tokens, store):
    first = file(client, tokens, "retry")
    again = file(client, tokens, "retry")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(store.applications()) == 1
    other = file(client, tokens, "retry", id_number=ID2, name=NAME2)
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    # Keys are a terminal's own: another terminal's same key is a new application.
    assert file(client, tokens, "retry", terminal="terminal2").json()["tracking_no"] != first.json()["tracking_no"]


def test_a_provisional_number_is_filed_exactly_once(client, tokens, store):
    first = file(client, tokens, "outbox-1", provisional_no="P-T01-000042")
    assert first.status_code == 201 and first.json()["provisional_no"] == "P-T01-000042"
    # The outbox lost the answer, and the retry comes with another key: the same application.
    again = file(client, tokens, "outbox-1b", provisional_no="P-T01-000042")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    # ...and now both keys give it.
    assert file(client, tokens, "outbox-1b", provisional_no="P-T01-000042").json() == first.json()
    assert len(store.applications()) == 1
    clash = file(client, tokens, "outbox-2", provisional_no="P-T01-000042", id_number=ID2, name=NAME2)
    assert clash.status_code == 409 and clash.json()["error"] == "idempotency_conflict"
    # The provisional number finds it, as the tracking number does.
    looked = look(client, "P-T01-000042", first.json()["lookup_code"]).json()
    assert looked["tracking_no"] == first.json()["tracking_no"] and looked["provisional_no"] == "P-T01-000042"
    like_tracking = file(client, tokens, "outbox-3", provisional_no="SQ20261123-0009")
    assert like_tracking.status_code == 422


def test_filing_needs_a_terminal_token_and_a_key(client, tokens):
    assert client.post("/api/applications", json=body()).status_code == 401
    staff = client.post("/api/applications", json=body(), headers=auth(tokens["staff"], "s1"))
    assert staff.status_code == 403 and staff.json()["error"] == "forbidden"
    nokey = client.post("/api/applications", json=body(), headers=auth(tokens["terminal"]))
    assert nokey.status_code == 400 and nokey.json()["error"] == "idempotency_key_required"


@pytest.mark.parametrize("change, fields", [
    ({"applicant": {"id_number": "999901199001010011", "name": NAME1, "phone": PHONE1, "source": "card"}},
     {"applicant.id_number", "id_number"}),  # wrong check digit (and the form's copy differs)
    ({"applicant": {"id_number": ID1, "name": NAME1, "phone": "12345", "source": "typed"}}, {"applicant.phone"}),
    ({"values": {"applicant_name": NAME1, "id_number": ID1, "phone": PHONE1, "reason": "lost",
                 "delivery": "window"}}, {"reason", "promise"}),
    ({"values": {"applicant_name": NAME1, "id_number": ID2, "phone": PHONE1, "reason": "expired",
                 "delivery": "window", "promise": True, "shoe_size": 42}}, {"id_number", "shoe_size"}),
])
def test_bad_values_are_named_field_by_field(client, tokens, change, fields):
    r = client.post("/api/applications", json={**body(), **change}, headers=auth(tokens["terminal"], "bad"))
    assert r.status_code == 422, r.text
    out = r.json()
    assert out["error"] == "invalid_values" and set(out["fields"]) == fields
    assert ID1 not in out["detail"] and NAME1 not in out["detail"]


def test_unknown_and_unfileable_items(client, tokens):
    unknown = client.post("/api/applications", json={**body(), "item": "XX-NOPE-1"},
                          headers=auth(tokens["terminal"], "u"))
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    counter = client.post("/api/applications", json={**body(), "item": "GA-SFZ-001"},
                          headers=auth(tokens["terminal"], "c"))
    assert counter.status_code == 422 and counter.json()["error"] == "not_fileable"
    extra = client.post("/api/applications", json={**body(), "colour": "red"}, headers=auth(tokens["terminal"], "e"))
    assert extra.status_code == 422 and extra.json()["error"] == "invalid_request"


# -- lookups --------------------------------------------------------------------------


def test_lookup_with_the_code(client, tokens, store):
    r = file(client, tokens, "l1")
    number, code = r.json()["tracking_no"], r.json()["lookup_code"]
    assert len(code) == 8 and set(code) <= set("23456789ABCDEFGHJKMNPQRSTUVWXYZ")
    assert r.headers["Cache-Control"] == "no-store"
    out = look(client, number, code)
    assert out.status_code == 200 and out.headers["Cache-Control"] == "no-store"
    body_ = out.json()
    assert body_["applicant"] == {"name": "测*一", "id_number": "999***********0010"}
    assert [(h["action"], h["status"]) for h in body_["history"]] == [("submit", "submitted")]
    assert "by" not in body_["history"][0] and "values" not in body_ and PHONE1 not in json.dumps(body_)
    assert code not in json.dumps(body_)
    # Case, spaces and dashes do not matter.
    assert look(client, number, f" {code[:4].lower()}-{code[4:]} ").status_code == 200
    # The last 4 of the ID number are no secret any more: the GET asks for the code.
    for path in (f"/api/applications/{number}", f"/api/applications/{number}?id_last4=0010"):
        gone = client.get(path)
        assert gone.status_code == 403 and gone.json()["error"] == "lookup_code_required"
    wrong = look(client, number, "ABCD2345" if code != "ABCD2345" else "ABCD2346")
    unknown = look(client, "SQ20990101-0001", code)
    # An unknown number answers exactly as a wrong code does: numbers cannot be enumerated.
    assert wrong.status_code == unknown.status_code == 403
    assert wrong.json() == unknown.json() and wrong.json()["error"] == "no_match" and wrong.text == unknown.text
    assert look(client, number, "").status_code == 422  # no code at all: a reason, not a 500
    # Only its keyed hash is in the database; the staff views and the events never show it.
    stored = store.application_lookup_hash(number)
    assert stored and code not in stored and len(stored) == 64
    staff = client.get(f"/api/applications/{number}", headers=auth(tokens["staff"]))
    personal = client.get(f"/api/applications/{number}/personal", headers=auth(tokens["staff"]))
    listing = client.get("/api/applications", headers=auth(tokens["staff"]))
    for shown in (staff, personal, listing):
        assert shown.status_code == 200 and code not in shown.text and "lookup_code" not in shown.text
    assert not any(code in json.dumps(e.data) for e in store.events_after(0))


def test_a_replay_answers_the_same_code(client, tokens):
    first = file(client, tokens, "rp1")
    again = file(client, tokens, "rp1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again.json()["lookup_code"] == first.json()["lookup_code"]
    other = file(client, tokens, "rp2", id_number=ID2, name=NAME2)
    assert other.json()["lookup_code"] != first.json()["lookup_code"]  # 1 in 31^8 to be equal


def test_wrong_codes_are_throttled_per_address_and_number(client, tokens, clock, store):
    filed = [file(client, tokens, f"t{i}").json() for i in range(2)]
    (number, code), (other, other_code) = [(f["tracking_no"], f["lookup_code"]) for f in filed]
    wrong = "ABCD2345" if code != "ABCD2345" else "ABCD2346"
    for _ in range(5):
        assert look(client, number, wrong).status_code == 403
    blocked = look(client, number, code)  # even the right code, from this address
    assert blocked.status_code == 429 and blocked.json()["error"] == "too_many_tries"
    assert int(blocked.headers["Retry-After"]) == 600 and "try again after 10:10" in blocked.json()["detail"]
    # Another number from this address, and this number from another address: not locked out.
    assert look(client, other, other_code).status_code == 200
    with TestClient(client.app, client=("198.51.100.7", 40000)) as elsewhere:
        assert look(elsewhere, number, code).status_code == 200
    clock.advance(minutes=9, seconds=59)
    assert look(client, number, code).status_code == 429
    clock.advance(seconds=1)
    assert look(client, number, code).status_code == 200
    # The throttle keeps a keyed hash of the address and number, neither in clear.
    scopes = [s for (s,) in store.db.rows("SELECT DISTINCT scope FROM throttle")]
    assert not any("testclient" in s or number in s for s in scopes)


def test_only_wrong_codes_count_and_the_provisional_number_counts_as_its_application(client, tokens, store):
    """Right codes cost nothing: a citizen checking often is never locked out by it; wrong
    codes sent under the provisional number count against the same application."""
    r = file(client, tokens, "w1", provisional_no="T01-20261123-0001")
    number, code = r.json()["tracking_no"], r.json()["lookup_code"]
    wrong = "ABCD2345" if code != "ABCD2345" else "ABCD2346"
    for _ in range(10):
        assert look(client, number, code).status_code == 200
    for asked in (number, "T01-20261123-0001") * 2:
        assert look(client, asked, wrong).status_code == 403
    assert look(client, number, code).status_code == 200  # 4 wrong ones: still open
    assert look(client, "T01-20261123-0001", wrong).status_code == 403
    assert look(client, number, code).status_code == 429


def test_a_kiosk_is_counted_by_terminal_not_by_its_address(client, tokens):
    """Citizens at one kiosk share its address: a stranger's wrong tries there lock out only
    that number at that kiosk, never the next citizen's number."""
    filed = [file(client, tokens, f"k{i}").json() for i in range(2)]
    kiosk = auth(tokens["terminal"])
    for _ in range(6):
        assert look(client, filed[0]["tracking_no"], "ABCD2345", kiosk).status_code in (403, 429)
    assert look(client, filed[0]["tracking_no"], filed[0]["lookup_code"], kiosk).status_code == 429
    assert look(client, filed[1]["tracking_no"], filed[1]["lookup_code"], kiosk).status_code == 200
    # The same address without the terminal token is another asker.
    assert look(client, filed[0]["tracking_no"], filed[0]["lookup_code"]).status_code == 200


def test_lookup_by_card_lists_a_persons_applications(client, tokens):
    a = file(client, tokens, "p1").json()["tracking_no"]
    file(client, tokens, "p2", id_number=ID2, name=NAME2)
    b = file(client, tokens, "p3", item="RS-SY-001").json()["tracking_no"]
    r = client.post("/api/applications/lookup", json={"id_number": ID1}, headers=auth(tokens["terminal"]))
    assert r.status_code == 200
    found = r.json()["applications"]
    assert [f["tracking_no"] for f in found] == [b, a]  # newest first
    assert all(f["applicant"]["id_number"] == "999***********0010" for f in found)
    none = client.post("/api/applications/lookup", json={"id_number": "999903196012310202"},
                       headers=auth(tokens["terminal"]))
    assert none.status_code == 200 and none.json() == {"applications": []}
    bad = client.post("/api/applications/lookup", json={"id_number": "999901199001010011"},
                      headers=auth(tokens["terminal"]))
    assert bad.status_code == 422
    assert client.post("/api/applications/lookup", json={"id_number": ID1},
                       headers=auth(tokens["staff"])).status_code == 403


def test_lookups_by_card_are_throttled_per_terminal(client, tokens):
    for _ in range(30):
        assert client.post("/api/applications/lookup", json={"id_number": ID1},
                           headers=auth(tokens["terminal"])).status_code == 200
    r = client.post("/api/applications/lookup", json={"id_number": ID1}, headers=auth(tokens["terminal"]))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert client.post("/api/applications/lookup", json={"id_number": ID1},
                       headers=auth(tokens["terminal2"])).status_code == 200


# -- the state machine ----------------------------------------------------------------


def test_accept_review_complete(client, tokens):
    filed = file(client, tokens, "s1").json()
    number, code = filed["tracking_no"], filed["lookup_code"]
    for action, status in (("accept", "accepted"), ("review", "in_review"), ("complete", "completed")):
        r = act(client, tokens, number, action, note="ok" if action == "complete" else None)
        assert r.status_code == 200 and r.json()["status"] == status
    done = r.json()
    assert done["finished_at"] == "2026-11-23T10:00:00+08:00" and done["due"] is None
    assert [(h["action"], h["by"]) for h in done["history"]] == [
        ("submit", "T01"), ("accept", "张敏"), ("review", "张敏"), ("complete", "张敏")]
    again = act(client, tokens, number, "accept")
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"
    assert again.json()["status"] == "completed" and "completed" in again.json()["detail"]
    public = look(client, number, code).json()
    assert [h["status"] for h in public["history"]] == ["submitted", "accepted", "in_review", "completed"]
    assert public["history"][-1]["note"] == "ok" and "张敏" not in json.dumps(public)


def test_bad_transitions_name_the_state(client, tokens):
    number = file(client, tokens, "b1").json()["tracking_no"]
    r = act(client, tokens, number, "review")
    assert r.status_code == 409 and r.json()["status"] == "submitted" and "it is submitted" in r.json()["detail"]
    assert act(client, tokens, "SQ20990101-0001", "accept").status_code == 404


def test_return_for_more_material_restarts_the_clock(client, tokens, clock):
    filed = file(client, tokens, "r1").json()
    number, code = filed["tracking_no"], filed["lookup_code"]
    act(client, tokens, number, "accept")
    no_note = act(client, tokens, number, "return")
    assert no_note.status_code == 422 and no_note.json()["error"] == "note_required"
    r = act(client, tokens, number, "return", note="请补充户口簿复印件")
    assert r.json()["status"] == "returned" and r.json()["due"] is None
    clock.advance(days=7)  # Monday 30 Nov: the citizen brings the material
    back = act(client, tokens, number, "accept").json()
    assert (back["status"], back["clock_from"], back["promised_date"]) == ("accepted", "2026-11-30", "2026-12-28")
    public = look(client, number, code).json()
    assert public["history"][2]["note"] == "请补充户口簿复印件" and public["promised_date"] == "2026-12-28"


def test_a_window_cannot_reject_on_its_own(client, tokens):
    filed = file(client, tokens, "j1").json()
    number, code = filed["tracking_no"], filed["lookup_code"]
    act(client, tokens, number, "accept")
    assert act(client, tokens, number, "reject").status_code == 422  # a ground is needed
    r = act(client, tokens, number, "reject", note="不符合换领条件")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert r.json()["rejection_pending"]["by"] == "张敏" and r.json()["rejection_pending"]["note"] == "不符合换领条件"
    public = look(client, number, code).json()
    assert public["status"] == "accepted" and public["rejection_pending"] is True
    assert [h["action"] for h in public["history"]] == ["submit", "accept"]  # the request is internal
    # Nothing else moves while the request waits; staff cannot decide it.
    assert act(client, tokens, number, "complete").status_code == 409
    assert act(client, tokens, number, "reject", note="again").status_code == 409
    staff = act(client, tokens, number, "approve-rejection")
    assert staff.status_code == 403 and "supervisor" in staff.json()["detail"]
    # A supervisor of other windows (service B) cannot decide on a service-A application.
    assert act(client, tokens, number, "approve-rejection", role="supervisor_b").status_code == 403
    r = act(client, tokens, number, "approve-rejection", role="supervisor")
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["rejection_pending"] is None
    assert r.json()["history"][-1] == {"action": "approve_rejection", "status": "rejected",
                                       "at": r.json()["finished_at"], "note": "不符合换领条件", "by": "李科长"}


def test_a_supervisor_cannot_approve_their_own_rejection(client, tokens):
    number = file(client, tokens, "o1").json()["tracking_no"]
    act(client, tokens, number, "reject", role="supervisor", note="材料虚假")
    own = act(client, tokens, number, "approve-rejection", role="supervisor")
    assert own.status_code == 403 and "cannot approve it too" in own.json()["detail"]
    assert act(client, tokens, number, "approve-rejection", role="duty").json()["status"] == "rejected"


def test_a_denied_rejection_lets_the_work_go_on(client, tokens):
    number = file(client, tokens, "n1").json()["tracking_no"]
    act(client, tokens, number, "accept")
    act(client, tokens, number, "reject", note="理由不足")
    assert act(client, tokens, number, "deny-rejection", role="staff").status_code == 403
    r = act(client, tokens, number, "deny-rejection", role="admin", note="材料齐全，继续办理")
    assert r.json()["status"] == "accepted" and r.json()["rejection_pending"] is None
    assert act(client, tokens, number, "deny-rejection", role="admin").status_code == 409  # nothing waits now
    assert act(client, tokens, number, "complete").json()["status"] == "completed"


def test_staff_act_only_on_their_windows_items(client, tokens):
    a = file(client, tokens, "w1").json()["tracking_no"]  # service A
    c = file(client, tokens, "w2", item="RS-SY-001").json()["tracking_no"]  # service C
    assert act(client, tokens, c, "accept").status_code == 403
    assert act(client, tokens, c, "accept", role="staff_c").status_code == 200
    assert act(client, tokens, a, "accept", role="staff_c").status_code == 403
    assert act(client, tokens, a, "accept", role="terminal").status_code == 403
    assert act(client, tokens, a, "accept", role="admin").status_code == 200


# -- the staff's list -------------------------------------------------------------------


def test_the_windows_list_and_its_filters(client, tokens):
    a = file(client, tokens, "f1").json()["tracking_no"]
    c = file(client, tokens, "f2", item="RS-SY-001").json()["tracking_no"]
    act(client, tokens, a, "accept")

    def listed(role="staff", **query):
        r = client.get("/api/applications", params=query, headers=auth(tokens[role]))
        assert r.status_code == 200, r.text
        return [x["tracking_no"] for x in r.json()["applications"]]

    assert listed() == [a]  # 张敏's windows serve A and B
    assert listed(window=1) == [a] and listed(window=3, role="admin") == []
    assert listed(role="admin") == [c, a]  # RS-SY-001 is due sooner (3 working days)
    assert listed(role="admin", status="accepted") == [a]
    assert listed(role="admin", status="submitted,accepted") == [c, a]
    assert listed(role="duty") == [c, a]
    assert client.get("/api/applications?window=4", headers=auth(tokens["staff"])).status_code == 403
    assert client.get("/api/applications?status=lost", headers=auth(tokens["admin"])).status_code == 422
    assert client.get("/api/applications", headers=auth(tokens["terminal"])).status_code == 403
    item = client.get("/api/applications", headers=auth(tokens["staff"])).json()["applications"][0]
    assert item["applicant"] == {"name": "测*一", "id_number": "999***********0010", "phone": "138****5678",
                                 "source": "card"}


def test_near_and_over_the_promised_date(client, tokens, clock):
    # RS-SY-001 promises 3 working days: filed Monday 23 Nov, due Thursday 26 Nov.
    c = file(client, tokens, "d1", item="RS-SY-001").json()
    assert c["promised_date"] == "2026-11-26"
    number = c["tracking_no"]

    def due(**query):
        r = client.get("/api/applications", params=query, headers=auth(tokens["admin"]))
        return [(x["tracking_no"], x["due"], x["used_share"], x["workdays_left"]) for x in r.json()["applications"]]

    assert due() == [(number, "ok", 0.0, 3)]
    clock.advance(days=2)  # Wednesday: 2 of 3 days used (67 %)
    assert due(due="near") == [] and due()[0][1:] == ("ok", 0.667, 1)
    clock.advance(days=1)  # Thursday, the promised date: 3 of 3
    assert due(due="near") == [(number, "near", 1.0, 0)] and due(due="over") == []
    clock.advance(days=1)  # Friday: past it
    assert due(due="over") == [(number, "over", 1.333, -1)] and due(due="near") == []
    act(client, tokens, number, "return", role="admin", note="补充离职证明")
    assert due(due="over") == [] and due()[0][1:] == (None, 1.333, None)  # waiting for the citizen: off the clock


def test_an_on_the_spot_item_is_near_on_its_day(client, tokens, clock):
    number = file(client, tokens, "z1", item="SW-006").json()["tracking_no"]  # promised 0 days
    listed = client.get("/api/applications?due=near", headers=auth(tokens["admin"])).json()["applications"]
    assert [x["tracking_no"] for x in listed] == [number] and listed[0]["used_share"] is None
    clock.advance(days=1)
    assert client.get("/api/applications?due=over", headers=auth(tokens["admin"])).json()["count"] == 1


# -- staff views and personal data ---------------------------------------------------------


def test_staff_detail_is_masked_and_personal_data_opens_on_record(client, tokens):
    filed = file(client, tokens, "v1").json()
    number, code = filed["tracking_no"], filed["lookup_code"]
    detail = client.get(f"/api/applications/{number}", headers=auth(tokens["staff"])).json()
    assert detail["values"]["id_number"] == "999***********0010" and detail["values"]["phone"] == "138****5678"
    assert detail["values"]["applicant_name"] == "测*一" and detail["values"]["reason"] == "expired"
    assert client.get(f"/api/applications/{number}", headers=auth(tokens["staff_c"])).status_code == 403
    opened = client.get(f"/api/applications/{number}/personal", headers=auth(tokens["staff"]))
    assert opened.status_code == 200 and opened.headers["Cache-Control"] == "no-store"
    assert opened.json()["applicant"]["id_number"] == ID1 and opened.json()["values"]["phone"] == PHONE1
    assert client.get(f"/api/applications/{number}/personal", headers=auth(tokens["terminal"])).status_code == 403
    history = client.get(f"/api/applications/{number}", headers=auth(tokens["staff"])).json()["history"]
    assert history[-1]["action"] == "view_personal" and history[-1]["by"] == "张敏"
    public = look(client, number, code).json()
    assert [h["action"] for h in public["history"]] == ["submit"]


def test_events_carry_no_personal_data(client, tokens, store):
    number = file(client, tokens, "e1").json()["tracking_no"]
    act(client, tokens, number, "accept")
    events = [e for e in store.events_after(0) if e.type.startswith("application.")]
    assert [e.type for e in events] == ["application.submitted", "application.changed"]
    data = json.loads(events[1].data)["application"]
    assert (data["tracking_no"], data["status"], data["action"], data["service"]) == (number, "accepted", "accept", "A")
    text = "".join(e.data for e in events)
    for secret in (ID1, "0010", NAME1, PHONE1, "张敏"):
        assert secret not in text


# -- figures ----------------------------------------------------------------------------


def test_completion_figures_per_item_and_department(client, tokens, clock):
    done_early = file(client, tokens, "g1").json()["tracking_no"]
    file(client, tokens, "g2", id_number=ID2, name=NAME2)  # stays submitted
    late = file(client, tokens, "g3", item="RS-SY-001").json()["tracking_no"]
    rejected = file(client, tokens, "g4", item="RS-SY-001", id_number=ID2, name=NAME2).json()["tracking_no"]
    for action in ("accept", "complete"):
        act(client, tokens, done_early, action)
    act(client, tokens, rejected, "reject", role="staff_c", note="不符合条件")
    act(client, tokens, rejected, "approve-rejection", role="supervisor")
    clock.advance(days=4)  # Friday 27 Nov: RS-SY-001 was due Thursday
    for action in ("accept", "complete"):
        act(client, tokens, late, action, role="staff_c")
    assert client.get("/api/applications/stats", headers=auth(tokens["staff"])).status_code == 403
    out = client.get("/api/applications/stats?from=2026-11-01&to=2026-11-30", headers=auth(tokens["admin"])).json()
    hall = out["hall"]
    assert (hall["submitted"], hall["completed"], hall["rejected"], hall["open"]) == (4, 2, 1, 1)
    assert (hall["completion_rate"], hall["completed_early"], hall["early_completion_rate"]) == (50.0, 1, 50.0)
    assert (hall["completed_late"], hall["warnings"], hall["overdue"]) == (1, 0, 0)
    by_item = {i["item"]: i for i in out["items"]}
    assert by_item["GA-SFZ-002"]["completion_rate"] == 50.0 and by_item["RS-SY-001"]["rejected"] == 1
    assert [d["department"] for d in out["departments"]] == ["公安局", "人力资源和社会保障局"]
    empty = client.get("/api/applications/stats?from=2026-10-01&to=2026-10-31", headers=auth(tokens["admin"])).json()
    assert empty["hall"]["submitted"] == 0 and empty["hall"]["completion_rate"] is None
    assert client.get("/api/applications/stats?from=2026-12-01&to=2026-11-01",
                      headers=auth(tokens["admin"])).status_code == 422

    r = client.get("/api/applications/export.csv?from=2026-11-01&to=2026-11-30", headers=auth(tokens["admin"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["范围", "编码", "名称"] and rows[1][0] == "全厅" and len(rows) == 1 + 1 + 2 + 2
    assert "50.0" in rows[1] and not any(s in r.text for s in (ID1, NAME1, PHONE1, NAME2))


def test_open_applications_count_as_warnings_and_overdue(client, tokens, clock):
    file(client, tokens, "h1", item="RS-SY-001")
    clock.advance(days=3)
    assert client.get("/api/applications/stats", headers=auth(tokens["admin"])).json()["hall"]["warnings"] == 1
    clock.advance(days=1)
    hall = client.get("/api/applications/stats", headers=auth(tokens["admin"])).json()["hall"]
    assert (hall["warnings"], hall["overdue"], hall["over_legal"]) == (0, 1, 0)


def test_openapi_lists_the_application_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/items", "/api/items/{code}", "/api/applications", "/api/applications/{number}",
                 "/api/applications/lookup", "/api/applications/{number}/approve-rejection",
                 "/api/applications/stats", "/api/applications/export.csv", "/api/notifications"):
        assert path in paths


def test_account_numbers_are_masked_for_staff_as_at_the_kiosk():
    from kiosq.content.catalog import SAMPLE, load_files
    from kiosq.queue.application_views import masked_values

    item = next(i for i in load_files(SAMPLE) if i.code == "GJJ-004")
    shown = masked_values(item, {"bank_account": "6222020200112233445", "bank_name": "示例银行", "monthly_rent": 1500})
    assert shown == {"bank_account": "***************3445", "bank_name": "示例银行", "monthly_rent": 1500}
