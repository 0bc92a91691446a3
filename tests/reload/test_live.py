"""Hot reload through a running server with live sessions on the emulator: what reaches the
provider, what each session reports, and what stays unchanged."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from .conftest import Served, settings, wait, without_id


async def test_a_new_instruction_is_one_minimal_update_and_the_next_answer_follows_it(
    served: Served,
) -> None:
    ws, _hello, record = await served.call()
    assert "Arr" not in await served.say(ws, record, "hello")
    status, body = await served.patch(settings(system_instruction="Talk like a pirate."))
    assert status == 200, body
    updates = record.received_of("session.update")
    assert [without_id(u) for u in updates[1:]] == [
        {"type": "session.update",
         "session": {"type": "realtime", "instructions": "Talk like a pirate."}}]
    assert body["version"] == 2
    [session] = body["sessions"]
    assert session["status"] == "applied" and session["version"] == 2
    assert session["applied"] == ["/nodes/llm/settings/system_instruction"]
    assert body["plan"]["nodes"][0]["wire"] == without_id(updates[1])
    assert "Arr, matey." in await served.say(ws, record, "hello again")


async def test_a_voice_change_after_audio_is_deferred_and_reaches_new_sessions(
    served: Served,
) -> None:
    ws, _hello, record = await served.call()
    await served.say(ws, record, "say something")  # the session has produced audio now
    patch = settings(session_properties={"audio": {"output": {"voice": "cedar"}}})
    status, body = await served.patch(patch)
    assert status == 200, body
    [session] = body["sessions"]
    assert session["status"] == "deferred" and session["version"] == 1
    [deferred] = session["deferred"]
    assert deferred["pointer"].endswith("/audio/output/voice")
    assert "voice" in deferred["reason"]
    assert len(record.received_of("session.update")) == 1  # nothing was sent
    _ws, hello, fresh = await served.call()
    assert hello["spec"]["version"] == 2
    first = fresh.received_of("session.update")[0]["session"]
    assert first["audio"]["output"]["voice"] == "cedar"


async def test_a_voice_change_before_audio_is_sent(served: Served) -> None:
    _ws, _hello, record = await served.call()
    status, body = await served.patch(
        settings(session_properties={"audio": {"output": {"voice": "cedar"}}}))
    assert status == 200 and body["sessions"][0]["status"] == "applied"
    assert without_id(record.received_of("session.update")[1]) == {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}}


async def test_turning_turn_detection_off_sends_null(served: Served) -> None:
    _ws, _hello, record = await served.call()
    patch = settings(session_properties={"audio": {"input": {"turn_detection": False}}})
    status, body = await served.patch(patch)
    assert status == 200 and body["sessions"][0]["status"] == "applied", body
    assert without_id(record.received_of("session.update")[1]) == {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
    async with wait():
        await record.wait_sent("session.updated", count=2)
    assert record.sent_of("session.updated")[-1]["session"]["audio"]["input"][
        "turn_detection"] is None


async def test_removing_a_setting_sends_its_default_and_keeps_the_others(
    served: Served,
) -> None:
    _ws, _hello, record = await served.call()
    status, _body = await served.patch(settings(system_instruction=None))
    assert status == 200
    assert without_id(record.received_of("session.update")[1])["session"] == {
        "type": "realtime", "instructions": ""}
    # A later change carries only itself: the voice set in the spec is not re-sent or lost.
    await served.patch(settings(session_properties={"audio": {"output": {"speed": 1.2}}}))
    assert without_id(record.received_of("session.update")[2])["session"] == {
        "type": "realtime", "audio": {"output": {"speed": 1.2}}}
    echo = record.sent_of("session.updated")[-1]["session"]["audio"]["output"]
    assert echo["voice"] == "marin" and echo["speed"] == 1.2


async def test_a_provider_rejection_rolls_the_session_back(served: Served) -> None:
    ws, _hello, record = await served.call()
    status, body = await served.patch(settings(system_instruction="Use forbidden words."))
    assert status == 200
    [session] = body["sessions"]
    assert session["status"] == "rejected" and session["version"] == 1
    [rejected] = session["rejected"]
    assert rejected["pointer"] == "/nodes/llm/settings/system_instruction"
    assert "Not allowed here." in rejected["reason"] and "last good" in rejected["reason"]
    async with wait():
        updates = await record.wait_received("session.update", count=3)
    assert [without_id(u)["session"] for u in updates[1:]] == [
        {"type": "realtime", "instructions": "Use forbidden words."},
        {"type": "realtime", "instructions": "You are terse."}]
    async with wait():
        await record.wait_sent("session.updated", count=2)
    assert record.sent_of("session.updated")[-1]["session"]["instructions"] == "You are terse."
    async with served.http.get(f"http://{served.base}/metrics") as response:
        text = await response.text()
    assert _metric(text, "flowspec_settings_rejected_total", node="llm") == 1
    assert _metric(text, "flowspec_reloads_total", outcome="applied") == 1
    assert "matey" not in await served.say(ws, record, "still there?")


async def test_an_invalid_patch_is_422_with_located_errors_and_changes_nothing(
    served: Served,
) -> None:
    _ws, _hello, record = await served.call()
    before = await served.get()
    patch = settings(session_properties={"audio": {"output": {"voice": "nobody"}}},
                     temprature=0.5)
    status, body = await served.patch(patch)
    assert status == 422
    pointers = {e["pointer"] for e in body["errors"]}
    assert "/nodes/llm/settings/session_properties/audio/output/voice" in pointers
    assert all(e["line"] and e["column"] for e in body["errors"])
    assert body["version"] == 1
    assert await served.get() == before
    assert len(record.received_of("session.update")) == 1
    status, body = await served.patch([{"op": "replace", "path": "/nodes/nope/type",
                                        "value": "x"}], kind="json-patch")
    assert status == 422 and body["errors"][0]["code"] == "patch.invalid"
    async with served.http.get(f"http://{served.base}/metrics") as response:
        assert _metric(await response.text(), "flowspec_reloads_total", outcome="rejected") == 2


async def test_two_patches_with_the_same_if_match_one_wins(served: Served) -> None:
    await served.call()
    first, second = await asyncio.gather(
        served.patch(settings(system_instruction="One."), if_match='"1"'),
        served.patch(settings(system_instruction="Two."), if_match='"1"'))
    assert sorted([first[0], second[0]]) == [200, 409]
    conflict = first[1] if first[0] == 409 else second[1]
    etag = f'"{served.reloader.store.graph.content_hash}"'
    assert conflict["error"] == "conflict" and conflict["etag"] == etag
    status, document = await served.get()
    assert document["version"] == 2 and document["etag"] == etag


async def test_a_structural_change_leaves_live_calls_on_their_version(served: Served) -> None:
    _ws, hello, record = await served.call()
    assert hello["spec"]["version"] == 1
    patch = {"nodes": {"caller": {"audio": {"sample_rate": 16000}}}}
    status, body = await served.patch(patch)
    assert status == 200
    [session] = body["sessions"]
    assert session["status"] == "deferred" and session["version"] == 1
    assert session["deferred"][0]["pointer"] == "/nodes/caller/audio/sample_rate"
    assert len(record.received_of("session.update")) == 1
    _ws2, hello2, _record2 = await served.call()
    assert hello2["spec"]["version"] == 2 and hello2["audio"]["sample_rate"] == 16000
    status, listing = await served.get("/admin/sessions")
    versions = sorted((s["version"], s["graph_version"]) for s in listing["sessions"])
    assert versions == [(1, 1), (2, 2)]


async def test_a_tool_change_sends_the_whole_new_tools_list(served: Served) -> None:
    _ws, _hello, record = await served.call()
    status, body = await served.patch({"nodes": {"get_weather": {"description": "Weather."}}})
    assert status == 200 and body["sessions"][0]["status"] == "applied", body
    session = without_id(record.received_of("session.update")[1])["session"]
    assert list(session) == ["type", "tools"]
    assert [t["description"] for t in session["tools"]] == ["Weather."]
    assert session["tools"][0]["parameters"]["required"] == ["location"]


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
