"""Package URLs: the spec's examples and its percent-encoding rules."""

from __future__ import annotations

from agent.collectors.software.purl import iso_utc, package_url, purl_namespace, ref_token


def test_spec_examples():
    assert package_url("deb", "debian", "curl", "7.50.3-1", {"arch": "i386", "distro": "jessie"}) == \
        "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"
    assert package_url("rpm", "fedora", "curl", "7.50.3-1.fc25", {"epoch": "1", "arch": "i386"}) == \
        "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&epoch=1"  # qualifiers sorted by key
    assert package_url("apk", "alpine", "curl", "7.83.0-r0", {"arch": "x86"}) == "pkg:apk/alpine/curl@7.83.0-r0?arch=x86"


def test_encoding():
    assert package_url("deb", "Debian", "libstdc++6", "1:12.2.0~rc1+dfsg-14", {"arch": None}) == \
        "pkg:deb/debian/libstdc%2B%2B6@1:12.2.0~rc1%2Bdfsg-14"  # ':' and '~' stay, '+' encoded, empty qualifier dropped
    assert package_url("generic", None, "a b/c", "1 2") == "pkg:generic/a%20b%2Fc@1%202"


def test_namespaces_refs_and_dates():
    assert purl_namespace("rhel") == "redhat" and purl_namespace("Fedora") == "fedora" and purl_namespace(None) is None
    assert ref_token("pkg", "rpm", "x", "x86_64", "1.0~rc1^2") == "pkg:rpm:x:x86_64:1.0_rc1_2"
    assert iso_utc(1643183492) == "2022-01-26T07:51:32Z" and iso_utc(0) is None and iso_utc("x") is None
