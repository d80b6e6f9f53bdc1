"""Request validation: invalid bodies get 400 in OpenAI's shape with `param` and `code` naming the
fault, on the in-process `demo` route and on a proxied route, and never reach the upstream."""

import json

import pytest

from conftest import assert_error_shape, chat_body, http_call, stream_request

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"

MSGS = [{"role": "user", "content": "hi"}]


def raw_chat(model: str, fields: str = "") -> bytes:
    """A chat body as raw text, for duplicate keys and escapes json.dumps cannot produce."""
    tail = ("," + fields) if fields else ""
    return ('{"model":"%s","messages":[{"role":"user","content":"hi"}]%s}'
            % (model, tail)).encode()


# (path, body, param, code): one row per rule, each run against both routes.
CASES = [
    # The reproduction: {"model":"demo"} without messages answered 200.
    (CHAT, {}, "messages", "missing_required_parameter"),
    (CHAT, {"messages": []}, "messages", "empty_array"),
    (CHAT, {"messages": "hi"}, "messages", "invalid_type"),
    (CHAT, {"messages": ["hi"]}, "messages[0]", "invalid_type"),
    (CHAT, {"messages": [{"content": "hi"}]}, "messages[0].role", "missing_required_parameter"),
    (CHAT, {"messages": MSGS + [{"role": "bot", "content": "x"}]}, "messages[1].role",
     "invalid_value"),
    (CHAT, {"messages": MSGS, "max_tokens": -1}, "max_tokens", "integer_below_min_value"),
    # Review §1.1: a max_tokens near INT64_MAX poisoned shared token buckets.
    (CHAT, {"messages": MSGS, "max_tokens": 9223372036854775800}, "max_tokens",
     "integer_above_max_value"),
    (CHAT, {"messages": MSGS, "max_completion_tokens": 2**31}, "max_completion_tokens",
     "integer_above_max_value"),
    (CHAT, {"messages": MSGS, "max_tokens": "100"}, "max_tokens", "invalid_type"),
    (CHAT, {"messages": MSGS, "max_tokens": 10.5}, "max_tokens", "invalid_type"),
    (CHAT, {"messages": MSGS, "n": 0}, "n", "integer_below_min_value"),
    (CHAT, {"messages": MSGS, "n": 129}, "n", "integer_above_max_value"),
    (CHAT, {"messages": MSGS, "temperature": 2.5}, "temperature", "decimal_above_max_value"),
    (CHAT, {"messages": MSGS, "temperature": "hot"}, "temperature", "invalid_type"),
    (CHAT, {"messages": MSGS, "top_p": -0.5}, "top_p", "decimal_below_min_value"),
    (CHAT, {"messages": MSGS, "stream": "yes"}, "stream", "invalid_type"),
    (CHAT, {"messages": MSGS, "stream_options": {"include_usage": True}}, "stream_options", None),
    (CHAT, {"messages": MSGS, "stream": True, "stream_options": []}, "stream_options",
     "invalid_type"),
    (COMPLETIONS, {}, "prompt", "missing_required_parameter"),
    (COMPLETIONS, {"prompt": 5}, "prompt", "invalid_type"),
    (COMPLETIONS, {"prompt": ["a", 1]}, "prompt[1]", "invalid_type"),
    (EMBEDDINGS, {}, "input", "missing_required_parameter"),
    (EMBEDDINGS, {"input": []}, "input", "empty_array"),
    (EMBEDDINGS, {"input": [""] * 2049}, "input", "array_above_max_length"),
]

ROUTES = ["demo", "mock-model"]


@pytest.mark.parametrize("model", ROUTES)
def test_invalid_bodies_get_400_with_param_and_code(gateway, mock, model):
    for path, fields, param, code in CASES:
        body = dict(fields, model=model)
        r = http_call(gateway, "POST", path, json_body=body)
        err = assert_error_shape(r, 400)
        assert err["type"] == "invalid_request_error", (path, fields, err)
        assert err["param"] == param, (path, fields, err)
        assert err["code"] == code, (path, fields, err)
    # Validation answers before any upstream is contacted.
    assert mock.stats()["requests"] == 0, mock.stats()


def test_messages_mirror_openai_wording(gateway):
    r = http_call(gateway, "POST", CHAT, json_body={"model": "demo"})
    assert assert_error_shape(r, 400)["message"] == "Missing required parameter: 'messages'."
    r = http_call(gateway, "POST", CHAT,
                  json_body={"model": "demo", "messages": [{"role": "robot"}]})
    err = assert_error_shape(r, 400)
    assert err["message"].startswith("Invalid value: 'robot'. Supported values are:"), err
    r = http_call(gateway, "POST", CHAT, json_body={"model": "demo", "messages": MSGS,
                                                    "max_tokens": -5})
    err = assert_error_shape(r, 400)
    assert err["message"] == ("Invalid 'max_tokens': integer below minimum value. Expected a "
                              "value >= 0, but got -5 instead."), err


@pytest.mark.parametrize("model", ROUTES)
def test_model_longer_than_256_bytes_is_rejected(gateway, model):
    # Review §2.5. 256 bytes pass validation (and then find no route: 404); 257 do not.
    r = http_call(gateway, "POST", CHAT, body=chat_body(model="x" * 256))
    assert_error_shape(r, 404)
    r = http_call(gateway, "POST", CHAT, body=chat_body(model=model + "x" * (257 - len(model))))
    err = assert_error_shape(r, 400)
    assert err["param"] == "model" and err["code"] == "string_above_max_length", err
    assert "256" in err["message"], err


@pytest.mark.parametrize("model", ROUTES)
def test_duplicate_model_or_stream_keys_are_rejected(gateway, mock, model):
    # Review §1.12: the gateway took the last "model", an upstream may take the first.
    for fields in ['"model":"demo"', '"mod\\u0065l":"mock-model"', '"stream":false,"stream":true',
                   '"stream":true,"str\\u0065am":true']:
        r = http_call(gateway, "POST", CHAT, body=raw_chat(model, fields))
        err = assert_error_shape(r, 400)
        assert err["param"] in ("model", "stream"), (fields, err)
        assert "Duplicate" in err["message"], (fields, err)
    assert mock.stats()["requests"] == 0, mock.stats()


@pytest.mark.parametrize("model", ROUTES)
def test_valid_bodies_still_pass(gateway, mock, model):
    hdrs = {"x-mock-tokens": "2"}
    ok = [
        (CHAT, {"messages": MSGS, "max_tokens": None, "n": None, "temperature": None,
                "stream": None, "stream_options": None}),
        (CHAT, {"messages": [{"role": "system", "content": None}, {"role": "developer"},
                             {"role": "user", "content": [{"type": "text", "text": "x"}]}],
                "max_tokens": 2**31 - 1, "temperature": 2, "top_p": 1, "n": 1}),
        (COMPLETIONS, {"prompt": [[1, 2], [3]]}),
        (EMBEDDINGS, {"input": [""] * 2048}),
    ]
    for path, fields in ok:
        r = http_call(gateway, "POST", path, json_body=dict(fields, model=model), headers=hdrs)
        assert r.status == 200, (path, fields, r)
    raw = b'{"model":"%s","m\\u0065ssages":[{"rol\\u0065":"\\u0075ser","content":"hi"}]}' % \
        model.encode()
    r = http_call(gateway, "POST", CHAT, body=raw, headers=hdrs)
    assert r.status == 200, r


def test_stream_with_stream_options_still_streams(gateway):
    body = json.dumps({"model": "demo", "messages": MSGS, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    res = stream_request(gateway, body)
    assert res.head.status == 200, res.head
    assert res.events and res.events[-1].is_done, res.events
    assert any(c.get("usage") for c in res.chunks()), res.data
