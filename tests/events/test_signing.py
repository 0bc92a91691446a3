from flowspec.events.signing import sign, verify

BODY = b'{"type":"call.started"}'


def test_a_signature_verifies_with_its_secret_only() -> None:
    header = sign("s3cret", BODY, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify("s3cret", header, BODY, now=1_700_000_010)
    assert not verify("other", header, BODY, now=1_700_000_010)
    assert not verify("s3cret", header, BODY + b" ", now=1_700_000_010)


def test_an_old_signature_is_refused() -> None:
    header = sign("s3cret", BODY, timestamp=1_700_000_000)
    assert not verify("s3cret", header, BODY, now=1_700_000_000 + 301)


def test_malformed_headers_are_simply_invalid() -> None:
    for header in ["", "v1=abc", "t=x,v1=abc", "t=1,t=2,v1=abc", "t=" + "9" * 40 + ",v1=a",
                   ",".join(["junk"] * 10_000)]:
        assert not verify("s3cret", header, BODY, now=1.0)
