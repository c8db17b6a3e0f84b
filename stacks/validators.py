"""Value checks shared by the config model: names, addresses, CIDRs, versions.

Each check returns the normalised value or raises ValueError with a message that says what is
allowed; pydantic turns that into a problem at the field's path.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_K0S_VERSION = re.compile(r"^v\d+\.\d+\.\d+\+k0s\.\d+$")
_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")
_GITEA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,38}$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def dns_label(value: str) -> str:
    """A lowercase RFC 1123 label: what Kubernetes accepts as a node name."""
    if not _LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS label; allowed: 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def hostname(value: str) -> str:
    """A fully qualified or short RFC 1123 host name (lowercased)."""
    name = value.rstrip(".").lower()
    if not name or len(name) > 253 or not all(_LABEL.match(part) for part in name.split(".")):
        raise ValueError(
            f"{value!r} is not a valid host name; allowed: dot-separated labels of letters, "
            "digits and '-', at most 253 characters"
        )
    return name


def domain(value: str) -> str:
    """A DNS domain with at least two labels and an alphabetic top-level label."""
    name = hostname(value)
    labels = name.split(".")
    if len(labels) < 2 or not labels[-1].isalpha():
        raise ValueError(f"{value!r} is not a domain; allowed: a name like 'k8s.example.org'")
    return name


def address(value: str) -> str:
    """An IPv4/IPv6 address or a host name."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if re.match(r"^[0-9.]+$", value):
        raise ValueError(f"{value!r} is not a valid IPv4 address")
    typo = _dotted_quad_typo(value)
    if typo:
        raise ValueError(typo)
    try:
        return hostname(value)
    except ValueError:
        raise ValueError(f"{value!r} is neither an IP address nor a host name") from None


def _dotted_quad_typo(value: str) -> str | None:
    """A message when `value` is shaped like an IPv4 address (four dot-separated parts, at least
    three of them numbers) but one part is not a number 0–255: '192.168.1O.22' (a letter O) is a
    typo, not a host name. A real host name's last label is never a number."""
    parts = value.rstrip(".").split(".")
    if len(parts) != 4 or sum(p.isdigit() for p in parts) < 3:
        return None
    bad = next(p for p in parts if not (p.isdigit() and int(p) <= 255))
    if not (parts[-1].isdigit() or re.fullmatch(r"[0-9OoIl]{1,3}", bad)):
        return None  # '192.168.10.host-22': odd, but a host name
    hint = " (a letter O or l for a digit?)" if re.search(r"[OoIl]", bad) else ""
    return f"{value!r} is not a valid IPv4 address: {bad!r} is not a number 0–255{hint}"


def ip(value: str) -> str:
    """An IPv4/IPv6 address."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def cidr(value: str) -> str:
    """A network in CIDR notation with no host bits set."""
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR network like '10.244.0.0/16' ({exc})") from None


def ip_range(value: str) -> str:
    """A CIDR block or an inclusive 'first-last' address range of one IP family."""
    if "-" not in value:
        return cidr(value)
    first, _, last = value.partition("-")
    try:
        start, stop = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a CIDR block nor a range like '192.0.2.240-192.0.2.250'"
        ) from None
    if start.version != stop.version or start > stop:
        raise ValueError(f"{value!r}: the first address must not be after the last, same IP family")
    return f"{start}-{stop}"


def range_networks(value: str) -> list:
    """The networks an `ip_range` value covers (for overlap checks)."""
    if "-" not in value:
        return [ipaddress.ip_network(value)]
    first, last = value.split("-")
    return list(ipaddress.summarize_address_range(ipaddress.ip_address(first), ipaddress.ip_address(last)))


def k0s_version(value: str) -> str:
    if not _K0S_VERSION.match(value):
        raise ValueError(f"{value!r} is not a k0s release; allowed: the form 'v1.33.4+k0s.0'")
    return value


def semver(value: str) -> str:
    if not _SEMVER.match(value):
        raise ValueError(f"{value!r} is not a pinned version; allowed: 'X.Y.Z' or 'vX.Y.Z'")
    return value


def minor_version(value: str) -> str:
    if not re.fullmatch(r"[0-9]+\.[0-9]+", value):
        raise ValueError(f"{value!r} is not a minor version; allowed: the form '1.18'")
    return value


def email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address; allowed: 'name@domain', an address you read")
    return value


# Names reserved for documentation and testing (RFC 2606, RFC 6761, RFC 6762 for .local): no mail
# reaches them, Route53 zones for them cannot be delegated, and Let's Encrypt refuses account
# e-mail addresses there (boulder's policy: example.com/.net/.org are forbidden mail domains, and a
# contact's domain must end in a public suffix, which .test, .invalid… are not).
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TLDS = ("test", "example", "invalid", "localhost", "local")


def reserved_domain(name: str) -> str | None:
    """The reserved name `name` is (or is under), or None for a name one can own."""
    name = name.rstrip(".").lower()
    for reserved in RESERVED_DOMAINS + RESERVED_TLDS:
        if name == reserved or name.endswith("." + reserved):
            return reserved
    return None


def gitea_name(value: str) -> str:
    if not _GITEA_NAME.match(value) or value.endswith((".git", ".wiki")):
        raise ValueError(
            f"{value!r} is not a Gitea name; allowed: up to 39 letters, digits, '-', '_', '.'"
        )
    return value


def label_key(value: str) -> str:
    if not _LABEL_KEY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes label key; allowed: '[prefix/]name'")
    return value


def label_value(value: str) -> str:
    if not _LABEL_VALUE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes label value; allowed: up to 63 characters")
    return value


def zone_id(value: str) -> str:
    if not _ZONE_ID.match(value):
        raise ValueError(f"{value!r} is not a Route53 hosted zone id; allowed: like 'Z0123456789ABC'")
    return value


def sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise ValueError(f"{value!r} is not a sha256 digest; allowed: 64 lowercase hex digits")
    return value


def url_template(value: str) -> str:
    """An http(s) URL that may use the placeholders {version} and {arch}."""
    if not re.match(r"^https?://[^\s]+$", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    try:
        value.format(version="v0.0.0+k0s.0", arch="amd64")
    except (KeyError, IndexError, ValueError):
        raise ValueError(
            f"{value!r}: allowed placeholders are {{version}} and {{arch}} only"
        ) from None
    return value


def overlaps(first: list[str], second: list[str]) -> bool:
    """True when any network of the ranges in `first` overlaps any in `second`."""
    nets_a = [n for r in first for n in range_networks(r)]
    nets_b = [n for r in second for n in range_networks(r)]
    return any(a.version == b.version and a.overlaps(b) for a in nets_a for b in nets_b)


def in_range(addr: str, value: str) -> bool:
    """True when `addr` (an IP; host names never match) lies inside the range `value`."""
    try:
        ip_addr = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip_addr in net for net in range_networks(value))


def same_segment(addr: str, value: str) -> bool:
    """True when the range `value` overlaps the /24 (IPv4) or /64 (IPv6) around the IP `addr`."""
    ip_addr = ipaddress.ip_address(addr)
    segment = ipaddress.ip_network(f"{ip_addr}/{24 if ip_addr.version == 4 else 64}", strict=False)
    return any(net.version == segment.version and net.overlaps(segment) for net in range_networks(value))


def repo_path(value: str) -> str:
    """A relative path inside a repository: no leading '/', no '..' segment."""
    parts = value.strip("/").split("/") if value else []
    if value.startswith("/") or not parts or any(p in ("", ".", "..") for p in parts) or not all(
        re.match(r"^[A-Za-z0-9_.-]+$", p) for p in parts
    ):
        raise ValueError(f"{value!r} is not a relative repository path like 'clusters/dev'")
    return "/".join(parts)


def dns_subdomain(value: str) -> str:
    """A Kubernetes object name (RFC 1123 subdomain), e.g. a StorageClass name."""
    if len(value) > 253 or not all(_LABEL.match(part) for part in value.split(".")):
        raise ValueError(f"{value!r} is not a Kubernetes object name; allowed: lowercase letters, digits, "
                         "'-' and '.', at most 253 characters")
    return value


def absolute_path(value: str) -> str:
    """An absolute path on a host, without '..' segments."""
    if not value.startswith("/") or ".." in value.split("/") or not re.match(r"^[A-Za-z0-9_./-]+$", value):
        raise ValueError(f"{value!r} is not an absolute host path like '/var/lib/local-path-provisioner'")
    return value.rstrip("/") or "/"


def proxy_url(value: str) -> str:
    """A proxy URL client-go accepts in a kubeconfig's proxy-url: socks5, http or https, host and port."""
    match = re.match(r"^(socks5|http|https)://([^/:\s]+|\[[0-9a-fA-F:]+\]):(\d{1,5})/?$", value)
    if not match or not 1 <= int(match.group(3)) <= 65535:
        raise ValueError(f"{value!r} is not a proxy URL; allowed: socks5://HOST:PORT, http://HOST:PORT "
                         "or https://HOST:PORT")
    return value.rstrip("/")


HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


def host_key(value: str) -> str:
    """An SSH host public key as `ssh-keyscan` or known_hosts shows it ('[host] type base64
    [comment]', one line or several), normalised to 'type base64', the form pulumi-command checks
    connections against. Of several lines, the first ed25519 key wins, then ECDSA.

    RSA keys are refused: pulumi-command v1.2.1 offers only the key's own type, 'ssh-rsa' (SHA-1
    signatures), as host key algorithm, and OpenSSH 8.8+ servers no longer sign with it, so the
    connection could never be made."""
    found: dict[str, str] = {}
    for line in value.strip().splitlines():
        words = line.split()
        while words and words[0] not in (*HOST_KEY_TYPES, "ssh-rsa"):
            words = words[1:]  # a known_hosts line's host names
        if len(words) < 2:
            continue
        kind, blob = words[0], words[1]
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{line.strip()!r}: the key is not valid base64") from None
        length = int.from_bytes(raw[:4], "big")
        if raw[4:4 + length].decode(errors="replace") != kind:
            raise ValueError(f"{line.strip()!r}: the key data is not a {kind} key")
        found.setdefault(kind, blob)
    for kind in HOST_KEY_TYPES:
        if kind in found:
            return f"{kind} {found[kind]}"
    if found:
        raise ValueError("an ssh-rsa host key cannot be checked: pulumi-command offers only SHA-1 'ssh-rsa' "
                         "signatures for it, which OpenSSH 8.8+ refuses; use the host's ed25519 or ECDSA key "
                         "(ssh-keyscan -t ed25519 HOST)")
    raise ValueError(f"{value.strip()!r} is not an SSH host key; allowed: 'ssh-ed25519 AAAA…' or ECDSA, as "
                     "ssh-keyscan or a known_hosts line shows it")


CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def cron_schedule(value: str) -> str:
    """A five-field cron schedule as Kubernetes CronJobs take it (numbers, *, ranges, lists, steps)."""
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{value!r} is not a cron schedule; allowed: five fields 'minute hour day month weekday', "
                         "e.g. '23 */6 * * *'")
    for text, (what, low, high) in zip(fields, CRON_FIELDS):
        for part in text.split(","):
            base, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                raise ValueError(f"{value!r}: the {what} step {step!r} is not a positive number")
            if base == "*":
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(b.isdigit() and low <= int(b) <= high for b in bounds):
                raise ValueError(f"{value!r}: the {what} field {part!r} is not a number {low}–{high}, a range or *")
    return value


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def private_key(value):
    """A PEM or OpenSSH private key (a SecretStr; the value itself is never echoed)."""
    if "PRIVATE KEY-----" not in value.get_secret_value():
        raise ValueError("is not a private key; allowed: PEM or OpenSSH '-----BEGIN … PRIVATE KEY-----'")
    return value


def age_identity(value):
    """An age X25519 identity (a SecretStr; the value itself is never echoed)."""
    if not re.match(r"^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}$", value.get_secret_value().strip()):
        raise ValueError("is not an age identity; allowed: 'AGE-SECRET-KEY-1' followed by 58 bech32 characters")
    return value


def local_file(value: str) -> str:
    """A file on the operator's machine (relative to the project directory)."""
    from pathlib import Path

    if not Path(value).expanduser().is_file():
        raise ValueError(f"{value!r}: no such file on this machine")
    return str(Path(value).expanduser())


CALENDAR_SHORTHANDS = {"minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "quarterly",
                       "semiannually"}
_WEEKDAYS = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*"
_CALENDAR = re.compile(
    rf"^(?:{_WEEKDAYS}(?:(?:\.\.|,){_WEEKDAYS})*\s+)?"  # weekdays: Mon, Mon..Fri, Sat,Sun
    r"(?:[0-9*][0-9*,./~-]*\s+)?"  # date: *-*-*, 2026-*-01, *-*~1
    r"[0-9*][0-9*,/]*:[0-9*][0-9*,/]*(?::[0-9*][0-9*,./]*)?$",  # time: 03:00, 03:00:00, *:0/15
    re.IGNORECASE)


def on_calendar(value: str) -> str:
    """A systemd OnCalendar expression (systemd.time(7)) without a time zone (UTC is appended):
    a shorthand (daily) or '[weekdays] [date] time'."""
    text = value.strip()
    if text.lower() in CALENDAR_SHORTHANDS or _CALENDAR.match(text):
        return text
    raise ValueError(f"{value!r} is not a systemd OnCalendar expression; e.g. '*-*-* 03:00:00', 'daily', "
                     "'Mon..Fri 02:30' (UTC; no time zone)")


def restore_source(value: str) -> str:
    """`latest`, or the key of one etcd backup in the bucket: etcd/<node>/<time>.tar.gz.age."""
    if value == "latest" or re.fullmatch(r"etcd/[a-z0-9.-]+/[0-9]{8}T[0-9]{6}Z\.tar\.gz\.age", value):
        return value
    raise ValueError(f"{value!r} is neither 'latest' nor a backup's key like "
                     "'etcd/cp-1/20261126T030000Z.tar.gz.age' (list them: aws s3 ls s3://<bucket>/etcd/ --recursive)")


def gitea_restore_source(value: str) -> str:
    """`latest`, or the key of one Gitea backup in the bucket: gitea/<time>.tar.gz.age."""
    if value == "latest" or re.fullmatch(r"gitea/[0-9]{8}T[0-9]{6}Z\.tar\.gz\.age", value):
        return value
    raise ValueError(f"{value!r} is neither 'latest' nor a Gitea backup's key like "
                     "'gitea/20261126T030000Z.tar.gz.age' (list them: aws s3 ls s3://<bucket>/gitea/)")
