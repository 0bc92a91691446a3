"""The protocol module: request bodies, event parsing, SSE decoding, calls, usage, replay."""

from __future__ import annotations

from flowspec.nodes.openai_responses import protocol as p
from flowspec.nodes.openai_responses.sse import SseDecoder
from flowspec.spec.models.responses import ResponsesNodeSpec


def spec(**fields: object) -> ResponsesNodeSpec:
    return ResponsesNodeSpec.model_validate({"type": "openai.responses", **fields})


def test_omitted_settings_are_not_sent_and_penalties_never_are() -> None:
    node = spec(settings={"frequency_penalty": 0.5, "presence_penalty": 0.1, "seed": 7})
    body = p.build_body(node, node.settings, [p.user_message("hi")])
    assert body == {"model": "gpt-4.1", "store": False, "input": [p.user_message("hi")]}


def test_given_settings_map_to_the_api_names_and_extra_is_merged_last() -> None:
    node = spec(service_tier="flex", extra={"store": True, "truncation": "auto"}, settings={
        "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 64,
        "model": "gpt-5", "system_instruction": "Be kind.",
        "reasoning": {"effort": "low", "summary": "auto"}})
    body = p.build_body(node, node.settings, [p.user_message("hi")], previous_response_id="r1")
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["max_output_tokens"] == 64 and body["instructions"] == "Be kind."
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["service_tier"] == "flex" and body["previous_response_id"] == "r1"
    assert body["store"] is True and body["truncation"] == "auto"


def test_empty_input_sends_the_instructions_as_a_developer_message() -> None:
    node = spec(settings={"system_instruction": "Say hi."})
    body = p.build_body(node, node.settings, [])
    assert body["input"] == [{"type": "message", "role": "developer", "content": "Say hi."}]
    assert "instructions" not in body


def test_the_chain_is_used_only_while_the_conversation_only_grew() -> None:
    conversation = p.Conversation()
    conversation.extend([p.user_message("a"), p.assistant_message("b")])
    chain = p.Chain("resp_1", 2, conversation.generation)
    assert p.next_input(conversation, chain) == (conversation.items, None)  # nothing new
    conversation.extend([p.user_message("c")])
    assert p.next_input(conversation, chain) == ([p.user_message("c")], "resp_1")
    conversation.reset()
    conversation.extend([p.user_message("a"), p.assistant_message("b"), p.user_message("c")])
    assert p.next_input(conversation, chain)[1] is None


def test_sse_decoder_handles_comments_multiline_data_and_no_done() -> None:
    decoder = SseDecoder()
    lines = [": keep-alive", "event: response.created", 'data: {"a":', 'data: 1}', "",
             "id: 4", "data:{\"b\": 2}", ""]
    assert [d for d in map(decoder.feed, lines) if d] == ['{"a":\n1}', '{"b": 2}']
    assert decoder.feed("data: [DONE]") is None and decoder.feed("") is None and decoder.done
    tail = SseDecoder()
    tail.feed('data: {"c": 3}')
    assert tail.flush() == '{"c": 3}'


def test_both_error_shapes_parse_alike() -> None:
    flat = p.parse_event({"type": "error", "code": "x", "message": "m", "param": None})
    nested = p.parse_event({"type": "error", "status": 429,
                            "error": {"type": "t", "code": "x", "message": "m"}})
    assert isinstance(flat, p.ApiError) and isinstance(nested, p.ApiError)
    assert (flat.code, flat.message) == (nested.code, nested.message) == ("x", "m")
    assert nested.status == 429 and p.parse_event({"type": "novel.event"}) == p.Ignored(
        "novel.event")


def test_calls_whose_arguments_never_completed_are_dropped() -> None:
    acc = p.ResponseAccumulator()
    events: list[p.ServerEvent] = [
        p.ItemAdded({"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "a"}),
        p.ArgumentsDone("fc_1", '{"x": 1}'),
        p.ItemAdded({"type": "function_call", "id": "fc_2", "call_id": "c2", "name": "b"}),
    ]
    for event in events:
        acc.apply(event)
    assert acc.calls() == [p.FunctionCall("c1", "a", '{"x": 1}')]


def test_reasoning_is_replayed_only_with_its_encrypted_content_unless_stored() -> None:
    item = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}],
            "encrypted_content": "gAAA"}
    assert p.context_item(item, store=False) == {
        "type": "reasoning", "id": "rs_1", "summary": item["summary"], "encrypted_content": "gAAA"}
    bare = {k: v for k, v in item.items() if k != "encrypted_content"}
    assert p.context_item(bare, store=False) is None
    assert p.context_item(bare, store=True) == {"type": "reasoning", "id": "rs_1",
                                                "summary": item["summary"]}
    message = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "hi", "annotations": []}]}
    assert p.context_item(message, store=False) == p.assistant_message("hi")  # no id


def test_usage_counts_missing_fields_as_zero() -> None:
    assert p.usage_values({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                           "input_tokens_details": {"cached_tokens": 4},
                           "output_tokens_details": {"reasoning_tokens": 2}}) == {
        "input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
        "cached_input_tokens": 4, "reasoning_tokens": 2}
    assert set(p.usage_values({"input_tokens": 3}).values()) == {3.0, 0.0}
    assert sum(p.usage_values(None).values()) == 0
