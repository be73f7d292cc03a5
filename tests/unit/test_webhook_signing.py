"""Webhook signatures (HMAC-SHA256 over "t.body"), backoff with jitter, URL rules."""

import hashlib
import hmac

import pytest

from autocloud.domain import webhook_signing as signing
from autocloud.domain.errors import InvalidInput

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"alert"}'
T = 1_767_225_600


def test_header_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signing.header(SECRET, T, BODY) == f"t={T},v1={expected}"


def test_verify_accepts_a_fresh_correct_signature() -> None:
    assert signing.verify(SECRET, signing.header(SECRET, T, BODY), BODY, T + 10) == T
    # A rotation may send two signatures: either may match.
    two = f"t={T},v1={'0' * 64},v1={signing.signature(SECRET, T, BODY)}"
    assert signing.verify(SECRET, two, BODY, T) == T


@pytest.mark.parametrize(
    ("value", "body", "now", "why"),
    [
        (None, BODY, T, "no Autocloud-Signature"),
        ("v1=abc", BODY, T, "needs t="),
        (f"t={T}", BODY, T, "needs t="),
        (signing.header(SECRET, T, BODY), BODY + b" ", T, "does not match"),
        (signing.header("whsec_other", T, BODY), BODY, T, "does not match"),
        (signing.header(SECRET, T, BODY), BODY, T + 301, "more than 300 s"),
        (signing.header(SECRET, T, BODY), BODY, T - 301, "more than 300 s"),
    ],
)
def test_verify_rejects(value: str | None, body: bytes, now: int, why: str) -> None:
    with pytest.raises(signing.BadSignature, match=why):
        signing.verify(SECRET, value, body, now)


def test_a_replayed_header_on_another_timestamp_fails() -> None:
    genuine = signing.header(SECRET, T, BODY)
    forged = genuine.replace(f"t={T}", f"t={T + 600}")  # "refresh" the timestamp
    with pytest.raises(signing.BadSignature, match="does not match"):
        signing.verify(SECRET, forged, BODY, T + 600)


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    for attempt, full in ((1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0), (200, 60.0)):
        low = signing.backoff_s(attempt, 2.0, 60.0, lambda: 0.0)
        high = signing.backoff_s(attempt, 2.0, 60.0, lambda: 0.999999)
        assert low == full / 2
        assert full / 2 < high <= full


def test_secrets_are_long_and_distinct() -> None:
    one, two = signing.new_secret(), signing.new_secret()
    assert one != two and one.startswith("whsec_") and len(one) > 40


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("https:///hook", "no host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com:99999/", "invalid port"),
        ("https://example.com/" + "a" * 2001, "longer than"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        signing.check_url(url)


def test_good_urls_pass() -> None:
    assert signing.check_url("https://hooks.example.com:8443/a?b=1").port == 8443
    assert signing.check_url("http://127.0.0.1:9000/").hostname == "127.0.0.1"


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata service
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
        ("64:ff9b::5db8:d70e", False),  # NAT64 of a public address
        ("2002:0a00:0001::1", True),  # 6to4 of 10.0.0.1
        ("2002:5db8:d70e::1", False),  # 6to4 of a public address
        ("93.184.215.14", False),
        ("2606:4700::6810:85e5", False),
    ],
)
def test_private_addresses(address: str, private: bool) -> None:
    assert signing.is_private(address) is private
