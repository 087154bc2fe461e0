"""The origin the sample book's links are built on: the reader's, https behind a Space's proxy."""

from __future__ import annotations

import ipaddress

from bookchat.api.admission import AdmissionPolicy, origin_of


def scope(peer: str, *headers: tuple[bytes, bytes]) -> dict:
    return {
        "type": "http",
        "scheme": "http",
        "client": (peer, 40000),
        "server": ("127.0.0.1", 7860),
        "headers": [(b"host", b"user-book.hf.space"), *headers],
    }


HTTPS = (b"x-forwarded-proto", b"https")


def test_behind_a_spaces_proxy_links_are_https() -> None:
    on_space = AdmissionPolicy(on_space=True)
    assert origin_of(scope("10.16.3.4", HTTPS), on_space) == "https://user-book.hf.space/"


def test_a_configured_proxy_is_believed_and_a_stranger_is_not() -> None:
    policy = AdmissionPolicy(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    assert origin_of(scope("10.1.2.3", HTTPS), policy) == "https://user-book.hf.space/"
    # Anyone can send the header: from a peer that is no trusted proxy it changes nothing.
    assert origin_of(scope("203.0.113.9", HTTPS), policy) == "http://user-book.hf.space/"
    assert origin_of(scope("10.1.2.3", (b"x-forwarded-proto", b"javascript")), policy) == (
        "http://user-book.hf.space/"
    )


def test_a_host_header_that_is_not_a_host_name_is_not_used() -> None:
    for bad in (b"evil.example/login?x=", b"user@evil.example", b"a b", b""):
        request = scope("127.0.0.1")
        request["headers"] = [(b"host", bad)]
        assert origin_of(request, AdmissionPolicy()) == "http://127.0.0.1:7860/"
    request = scope("127.0.0.1")
    request["headers"] = [(b"host", b"[::1]:8000")]
    assert origin_of(request, AdmissionPolicy()) == "http://[::1]:8000/"
