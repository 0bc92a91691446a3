from flowspec.conversation.template import Malformed, Placeholder, names, render, render_all, scan


def test_placeholders_are_found_in_order_each_once() -> None:
    text = "Hi {{ name }}, your order {{order}} for {{name}}."
    assert names(text) == ["name", "order"]
    assert [t for t in scan(text) if isinstance(t, Placeholder)][0] == Placeholder("name", 3)


def test_render_fills_values_as_text() -> None:
    values = {"name": "Ann", "n": 3, "vip": True, "ratio": 2.0}
    assert render("{{name}} has {{n}} ({{vip}}, {{ratio}})", values) == "Ann has 3 (true, 2)"


def test_a_value_is_never_read_as_a_template_again() -> None:
    assert render("Hi {{name}}", {"name": "{{secret}}", "secret": "x"}) == "Hi {{secret}}"


def test_escape_and_unknown_names_stay_visible() -> None:
    assert render("{{{{literal}} {{missing}}", {}) == "{{literal}} {{missing}}"


def test_malformed_openings_are_reported_with_their_offset() -> None:
    found = list(scan("ok {{ 1bad }} and {{name}}"))
    assert isinstance(found[0], Malformed) and found[0].offset == 3
    assert found[1] == Placeholder("name", 18)


def test_render_all_walks_mappings_and_lists() -> None:
    assert render_all({"a": ["{{x}}", 1], "b": {"c": "{{x}}!"}}, {"x": "y"}) == \
        {"a": ["y", 1], "b": {"c": "y!"}}
