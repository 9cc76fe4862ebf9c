"""A real authoritative DNS server (NSD) on 127.0.0.1 for the tests and the bench, serving zones written from Python.

Why NSD: the e-mail-auth checks must be tested against real DNS over real sockets (UDP and TCP, truncation,
NXDOMAIN vs NODATA, the legacy SPF RR type 99), not against a mocked resolver.

Use from tests (fixtures in `tests/conftest.py`):

    def test_x(nsd_factory):                       # a fresh server with these zones (function-scoped is fine)
        server = nsd_factory({"example.test": {
            "@":     [("TXT", "v=spf1 include:_spf.example.test -all"), ("MX", "10 mx.example.test.")],
            "_spf":  [("TXT", ["v=spf1 ip4:192.0.2.0/24", " -all"])],      # a list: several character-strings
            "mx":    [("A", "192.0.2.10"), ("AAAA", "2001:db8::10")],
            "bin":   [("TXT", b"v=spf1 \\xff -all")],                       # bytes: written as \\DDD escapes
        }})
        resolver = CheckResolver(nameservers=[server.address])      # (host, port)

    def test_y(dns_zones):    # session-scoped server with every tests/zones/*.zone file (its $ORIGIN line names it)
        resolver = CheckResolver(nameservers=[dns_zones.address])

  Record values: TXT/SPF take str (encoded UTF-8), bytes, or a list of them (one string each; any string over
  255 bytes is split); other types take their presentation text (`"10 mx.example.test."`). Owner names are
  relative to the zone (`"@"` is the apex) unless they end in "."; targets of MX/CNAME/PTR/NS/DNAME/SRV get a
  trailing "." when they lack one. SOA and NS at the apex are generated unless given.

  A zone file in tests/zones/ is plain RFC 1035 text that starts with `$ORIGIN name.`; `zone_file(...)` renders
  Python data into that form if you want to write one.

Faults (timeouts, SERVFAIL, REFUSED, TC, delays) are injected by `tests.support.dns_faults.FaultProxy` placed in
front of the server (fixture `dns_proxy`). For the bench or manual use, `python -m tests.support.dns_server
tests/zones [--delay-ms 20]` serves a directory of zone files (behind a delaying proxy when asked) and prints
`127.0.0.1 PORT` on its first line, then runs until interrupted.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
NAME_TARGET_TYPES = {"CNAME", "PTR", "NS", "DNAME"}
RecordValue = str | bytes | Sequence[str | bytes]
ZoneData = Mapping[str, Sequence[tuple[str, RecordValue]]]


class DnsServerError(RuntimeError):
    """NSD could not be started or did not load a zone (the message carries its log)."""


def nsd_available() -> bool:
    return Path(NSD).exists()


# ---------------------------------------------------------------- zone text


def escape_character_string(value: str | bytes) -> str:
    """One DNS <character-string> in zone-file form: quoted, with every byte outside printable ASCII as \\DDD."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    out = []
    for byte in data:
        if byte in (0x22, 0x5C) or byte < 0x20 or byte > 0x7E:
            out.append(f"\\{byte:03d}")
        else:
            out.append(chr(byte))
    return '"' + "".join(out) + '"'


def txt_rdata(value: RecordValue) -> str:
    """TXT/SPF rdata: a single value is split into 255-byte strings; a list keeps its strings (each ≤ 255)."""
    if isinstance(value, (str, bytes)):
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    else:
        if not value:
            return "\\# 0"  # no character-string at all (generic RFC 3597 form; NSD takes it for TXT only)
        chunks = []
        for part in value:
            data = part.encode("utf-8") if isinstance(part, str) else bytes(part)
            chunks.extend([data[i : i + 255] for i in range(0, len(data), 255)] or [b""])
    return " ".join(escape_character_string(chunk) for chunk in chunks)


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def escape_name(name: str) -> str:
    """A domain name in zone-file form: every character other than letters, digits, "-", "_", "*", "." as \\DDD."""
    out = []
    for byte in name.encode("utf-8"):
        char = chr(byte)
        out.append(char if char.isascii() and (char.isalnum() or char in "-_*.") else f"\\{byte:03d}")
    return "".join(out)


def _rdata_text(rdtype: str, value: RecordValue) -> str:
    if rdtype in ("TXT", "SPF"):
        return txt_rdata(value)
    if not isinstance(value, str):
        raise TypeError(f"{rdtype} value must be text, got {type(value).__name__}")
    value = value.strip()
    if rdtype in NAME_TARGET_TYPES:
        return escape_name(_absolute(value))
    if rdtype == "MX":
        preference, _, target = value.partition(" ")
        return f"{preference} {escape_name(_absolute(target.strip()))}"
    if rdtype == "SRV":
        *numbers, target = value.split()
        return " ".join([*numbers, _absolute(target)])
    return value


def owner_name(owner: str, origin: str) -> str:
    """An owner as written in the zone data → absolute name under `origin`."""
    origin = _absolute(origin) if origin not in ("", ".") else "."
    if owner in ("@", ""):
        return origin
    if owner.endswith("."):
        return owner
    return owner + "." + (origin if origin != "." else "")


def zone_file(origin: str, records: ZoneData, *, ttl: int = 300) -> str:
    """RFC 1035 zone text for `origin` (SOA/NS generated unless given)."""
    apex = _absolute(origin) if origin not in ("", ".") else "."
    lines = [f"$ORIGIN {apex}", f"$TTL {ttl}"]
    given = {(owner_name(o, apex).lower(), t.upper()) for o, recs in records.items() for t, _ in recs}
    if (apex.lower(), "SOA") not in given:
        lines.append(f"{apex} IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60")
    if (apex.lower(), "NS") not in given:
        lines.append(f"{apex} IN NS ns.invalid.")
    for owner, recs in records.items():
        name = escape_name(owner_name(owner, apex))
        for rdtype, value in recs:
            rdtype = rdtype.upper()
            if rdtype == "SPF" and not isinstance(value, (str, bytes)) and not value:
                lines.append(f"; {name} SPF with no strings: NSD cannot serve an empty type 99 record")
                continue
            lines.append(f"{name} IN {rdtype} {_rdata_text(rdtype, value)}")
    return "\n".join(lines) + "\n"


_ORIGIN_RE = re.compile(r"^\s*\$ORIGIN\s+(\S+)", re.MULTILINE | re.IGNORECASE)


def origin_of(zone_text: str, source: str = "zone") -> str:
    match = _ORIGIN_RE.search(zone_text)
    if not match:
        raise DnsServerError(f"{source}: a zone file must start with `$ORIGIN name.`")
    return _absolute(match.group(1))


def load_zone_dir(directory: Path, pattern: str = "*.zone") -> dict[str, str]:
    """origin → zone text for every zone file in `directory` (files sharing an origin are concatenated)."""
    zones: dict[str, str] = {}
    for path in sorted(directory.glob(pattern)):
        text = path.read_text(encoding="utf-8")
        origin = origin_of(text, str(path)).lower()
        zones[origin] = zones.get(origin, "") + text + "\n"
    return zones


# ---------------------------------------------------------------- the server


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now (the caller retries if it is taken meanwhile)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise DnsServerError("no free port on 127.0.0.1")


def _probe(port: int, origin: str, timeout: float = 0.2) -> str | None:
    """The rcode text of a SOA query for `origin`, or None when nothing answered."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode

    try:
        response = dns.query.udp(dns.message.make_query(origin, "SOA"), "127.0.0.1", port=port, timeout=timeout)
    except (OSError, dns.exception.DNSException):
        return None
    return dns.rcode.to_text(response.rcode())


def _die_with_parent() -> None:
    """Linux: NSD gets SIGTERM if the test process dies without stopping it (no stray servers)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class NsdServer:
    """One NSD process serving `zones` (origin → zone text) on 127.0.0.1:port, UDP and TCP."""

    zones: dict[str, str]
    port: int = 0
    workdir: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _own_workdir: bool = field(default=False, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def _write_config(self) -> Path:
        assert self.workdir is not None
        zonesdir = self.workdir / "zones"
        zonesdir.mkdir(exist_ok=True)
        zone_blocks = []
        for index, (origin, text) in enumerate(sorted(self.zones.items())):
            filename = f"z{index}.zone"
            (zonesdir / filename).write_text(text, encoding="utf-8")
            zone_blocks.append(f'zone:\n\tname: "{origin}"\n\tzonefile: "{filename}"\n')
        config = self.workdir / "nsd.conf"
        config.write_text(
            "server:\n"
            f"\tip-address: 127.0.0.1@{self.port}\n"
            "\tdo-ip4: yes\n\tdo-ip6: no\n\tserver-count: 1\n\treuseport: no\n"
            f'\tusername: ""\n\tchroot: ""\n\tzonesdir: "{zonesdir}"\n'
            f'\tpidfile: "{self.workdir}/nsd.pid"\n\tdatabase: ""\n'
            f'\tzonelistfile: "{self.workdir}/zone.list"\n\txfrdfile: "{self.workdir}/xfrd.state"\n'
            f'\txfrdir: "{self.workdir}"\n\tlogfile: "{self.workdir}/nsd.log"\n'
            "\tverbosity: 1\n\thide-version: yes\n\tminimal-responses: no\n\tround-robin: no\n"
            "\ttcp-count: 256\n\tipv4-edns-size: 1232\n"
            "remote-control:\n\tcontrol-enable: no\n\n" + "\n".join(zone_blocks),
            encoding="utf-8",
        )
        return config

    def log(self) -> str:
        path = (self.workdir or Path("/nonexistent")) / "nsd.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def start(self, timeout: float = 15.0) -> NsdServer:
        if not nsd_available():
            raise DnsServerError(f"NSD is not installed ({NSD}); install the Debian package `nsd`")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="cordon-nsd-"))
            self._own_workdir = True
        last_error = ""
        for _attempt in range(5):
            fixed_port = self.port
            if not fixed_port:
                self.port = free_port()
            config = self._write_config()
            self.process = subprocess.Popen(
                [NSD, "-d", "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            error = self._wait_ready(timeout)
            if error is None:
                atexit.register(self.stop)
                return self
            last_error = error
            self.stop(remove=False)
            if fixed_port or "bind" not in error.lower() and "address already in use" not in error.lower():
                break
            self.port = 0
        raise DnsServerError(f"NSD did not start: {last_error}")

    def _wait_ready(self, timeout: float) -> str | None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        pending = sorted(self.zones)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                return (stderr + self.log()).strip()[-2000:] or f"exited with {self.process.returncode}"
            log = self.log()
            if re.search(r"error: (zone .* read with \d+ errors|.*could not|.*can't bind)", log):
                return log.strip()[-2000:]
            pending = [origin for origin in pending if _probe(self.port, origin) != "NOERROR"]
            if not pending:
                return None
            time.sleep(0.05)
        return f"zones not served after {timeout}s: {pending[:5]}; log:\n{self.log()[-2000:]}"

    def stop(self, remove: bool = True) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        if remove and self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> NsdServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_nsd(zones: Mapping[str, ZoneData | str] | Iterable[tuple[str, ZoneData | str]]) -> NsdServer:
    """Start NSD for zones given as data (rendered with `zone_file`) or as ready zone text."""
    items = zones.items() if isinstance(zones, Mapping) else zones
    rendered = {}
    for origin, data in items:
        key = _absolute(origin).lower() if origin not in ("", ".") else "."
        rendered[key] = data if isinstance(data, str) else zone_file(origin, data)
    return NsdServer(rendered).start()


def main(argv: list[str] | None = None) -> int:
    """Serve a directory of zone files until interrupted (used by the bench and for manual checks)."""
    import argparse
    import threading

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zonedir", type=Path)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer delay added by a proxy in front")
    args = parser.parse_args(argv)
    server = NsdServer(load_zone_dir(args.zonedir)).start()
    proxy = None
    try:
        if args.delay_ms:
            from tests.support.dns_faults import FaultProxy

            proxy = FaultProxy(server.address, delay_ms=args.delay_ms).start()
            print(f"127.0.0.1 {proxy.port}", flush=True)
        else:
            print(f"127.0.0.1 {server.port}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
