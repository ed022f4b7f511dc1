"""runner/egress.py and runner/proxies.py: host parsing, the policy and NO_PROXY, without a network."""

from __future__ import annotations

import ipaddress

import pytest

from segfuncd.runner.egress import EgressError, EgressPolicy, parse_rule, parse_target
from segfuncd.runner.proxies import ProxySettings


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0x7f000001/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://127.1/", "http://127.0.0.1/"),
        ("http://127.0.0.1./", "http://127.0.0.1/"),
        ("http://169.254.43518/x?y=1", "http://169.254.169.254/x?y=1"),
        ("http://%31%36%39.254.169.254/", "http://169.254.169.254/"),
        ("http://\uff11\uff12\uff17.0.0.1/", "http://127.0.0.1/"),  # full-width digits
        ("http://[::ffff:127.0.0.1]:80/", "http://[::ffff:7f00:1]/"),
        ("https://Example.COM:8443/a", "https://example.com:8443/a"),
        ("http://x/a b?q=é c", "http://x/a%20b?q=%C3%A9%20c"),
    ],
)
def test_hosts_are_parsed_as_the_whatwg_url_parser_does(url: str, canonical: str) -> None:
    assert parse_target(url).url == canonical


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://169.254.169.254/",
        "http://[fe80::1]/",
        "http://100.100.100.200/",
        "http://[fd00:ec2::254]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
        "http://[64:ff9b:1::a9fe:a9fe]/",  # local-use NAT64
        "http://[2002:a9fe:a9fe::]/",  # 6to4
        "http://[::a9fe:a9fe]/",  # IPv4-compatible
        "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped
        "http://[::ffff:0:a9fe:a9fe]/",  # SIIT
    ],
)
def test_denied_by_default(url: str) -> None:
    with pytest.raises(EgressError, match="blocked by egress policy") as info:
        EgressPolicy().check(parse_target(url))
    assert info.value.blocked


@pytest.mark.parametrize("url", ["http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://[fd12::1]/"])
def test_private_ranges_are_allowed_by_default(url: str) -> None:
    EgressPolicy().check(parse_target(url))


@pytest.mark.parametrize(
    "url",
    [
        "http://1.2.3.4.5/",
        "http://256.0.0.1/",
        "http://0x1ffffffff/",
        "http://1.2.3.08/",  # 08 is not octal
        "http://[::1/",
        "http://[fe80::1%25eth0]/",
        "http://a b/",
        "http://x:99999/",
        "http://x:8o/",
        "http:///",
        "ftp://x/",
        "http://a\\b/",
        "http://\ud800/",
        "http://%ff/",
        "",
        "http://xn--/",
    ],
)
def test_malformed_urls_are_egress_errors_never_crashes(url: str) -> None:
    with pytest.raises(EgressError):
        parse_target(url)


def test_allow_beats_deny_for_the_more_specific_or_equal_rule() -> None:
    lo = ipaddress.ip_address("127.0.0.1")
    policy = EgressPolicy(allow=["127.0.0.1:8080"], deny=["10.0.0.0/8"])
    assert policy.refusal(lo, 8080) is None
    assert policy.refusal(lo, 8081) is not None
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1"), 8080) is None  # embedded form, same rule
    assert policy.refusal(ipaddress.ip_address("10.9.9.9"), 80) is not None
    assert EgressPolicy(allow=["0.0.0.0/0"]).refusal(lo, 80) is not None  # a broad allow does not open loopback
    assert EgressPolicy(allow=["127.0.0.0/8"]).refusal(lo, 80) is None  # an equal one does


@pytest.mark.parametrize("bad", ["nope", "10.0.0.0/33", "example.com:80", "1.2.3.4:99999", "[::1]x"])
def test_bad_rules_say_what_is_wrong(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_rule(bad)


def test_no_proxy_matches_the_canonical_host() -> None:
    env = {"http_proxy": "http://127.0.0.1:3128", "no_proxy": "169.254.169.254, .corp.example, 10.0.0.0/8, [::1]"}
    settings = ProxySettings.from_environment(env)
    for url in (
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://169.254.43518/",
        "http://169.254.169.254./",
        "http://[::ffff:169.254.169.254]/",
        "http://a.corp.example./",
        "http://corp.example/",
        "http://10.200.0.1/",
        "http://[::1]/",
    ):
        assert settings.proxy_for(parse_target(url)) is None, url
    assert settings.proxy_for(parse_target("http://11.0.0.1/")) == "http://127.0.0.1:3128"
    assert settings.proxy_for(parse_target("http://notcorp.example/")) == "http://127.0.0.1:3128"
    assert settings.proxy_for(parse_target("https://11.0.0.1/")) is None  # no https_proxy


def test_only_short_urls_are_kept_by_the_runner_wide_parse_cache() -> None:
    """The parse cache is shared by every function of a runner: a function sending huge
    unique URLs must not fill it (1024 x 100 KB was ~800 MB, past memory_mb)."""
    from segfuncd.runner import egress

    before = egress._cached_target.cache_info().currsize
    for i in range(5):
        assert egress.parse_target(f"http://example.com/{i}/" + "x" * 100_000).host == "example.com"
    assert egress._cached_target.cache_info().currsize == before
    egress.parse_target("http://example.com/short-one")
    assert egress._cached_target.cache_info().currsize == before + 1
