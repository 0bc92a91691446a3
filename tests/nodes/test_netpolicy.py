"""The network policy of calling-out nodes: which addresses are public, and the resolver that
keeps the rest out at call time (no name lookup here leaves the process)."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from flowspec.nodes.netguard import GuardedClient, PolicyResolver, PrivateAddressRefused
from flowspec.nodes.netpolicy import address_problem, host_problem, ip_literal, url_problem


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.0.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"), ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("192.0.2.7", "private"), ("fec0::1", "site-local"),
    # IPv6 forms that carry an IPv4 address are judged by it.
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::", "loopback"), ("64:ff9b::a00:1", "private"),
])
def test_addresses_that_are_not_public(address: str, reason: str) -> None:
    problem = address_problem(address)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111",
                                     "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"])
def test_public_addresses(address: str) -> None:
    assert address_problem(address) is None


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("127.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("017700000001", "127.0.0.1"),
    ("example.com", None), ("deadbeef", None), ("1e5", None),
])
def test_ip_literals_in_every_form_a_resolver_reads(host: str, address: str | None) -> None:
    found = ip_literal(host)
    assert (str(found) if found is not None else None) == address


def test_names_of_this_machine() -> None:
    assert host_problem("localhost") == host_problem("LocalHost.") == \
        host_problem("db.localhost") == "names this machine (localhost)"
    assert host_problem("localhost.example.com") is None


def test_url_problems() -> None:
    assert url_problem("https://api.example.com/x", False) is None
    assert url_problem("http://127.0.0.1:9/x", True) is None
    private = url_problem("http://127.0.0.1:9/x", False)
    assert private is not None and (private.kind, private.host) == ("private-network", "127.0.0.1")
    for allow in (False, True):
        credentials = url_problem("https://u:p@api.example.com/", allow)
        assert credentials is not None and credentials.kind == "credentials"
    assert url_problem("http://[::1/", False) is None  # malformed: the schema's or aiohttp's


class Table(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0,
                              flags=0) for a in self.addresses]

    async def close(self) -> None:
        self.closed = True


async def test_the_resolver_drops_private_addresses_and_keeps_public_ones() -> None:
    resolver = PolicyResolver(Table("10.0.0.5", "93.184.216.34", "127.0.0.1"))
    assert [r["host"] for r in await resolver.resolve("mixed.example", 443)] == ["93.184.216.34"]


async def test_the_resolver_refuses_a_name_with_only_private_addresses() -> None:
    resolver = PolicyResolver(Table("169.254.169.254"))
    with pytest.raises(PrivateAddressRefused) as info:
        await resolver.resolve("metadata.example", 80)
    assert isinstance(info.value, OSError)
    assert info.value.strerror == ("metadata.example resolves to 169.254.169.254, which is a "
                                   "link-local address (where cloud metadata services such as "
                                   "169.254.169.254 answer)")


async def test_allow_private_keeps_every_address_and_a_given_lookup_stays_open() -> None:
    table = Table("127.0.0.1", "10.0.0.5")
    resolver = PolicyResolver(table, allow_private=True)
    assert [r["host"] for r in await resolver.resolve("local.example")] == ["127.0.0.1",
                                                                            "10.0.0.5"]
    await resolver.close()
    assert not table.closed  # it belongs to whoever passed it


async def test_the_client_replaces_its_session_when_the_setting_changes() -> None:
    client = GuardedClient(Table("127.0.0.1"))
    strict = await client.session(allow_private=False)
    assert await client.session(allow_private=False) is strict
    assert not strict.trust_env
    relaxed = await client.session(allow_private=True)
    assert relaxed is not strict and strict.closed
    await client.close()
    assert relaxed.closed
