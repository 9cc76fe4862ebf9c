"""A fault-injecting DNS proxy (UDP and TCP on 127.0.0.1) in front of the test NSD.

An authoritative server cannot time out, SERVFAIL or truncate on purpose; this proxy does, per query name and
type, so the checks can be shown to say "could not check" (never "missing") and to retry truncated answers over
TCP. It runs its own asyncio loop in a daemon thread, so sync code, async tests (each with its own loop), CLI
subprocesses and the bench can all use it.

    proxy = FaultProxy(server.address).start()          # or the `dns_proxy` fixture (tests/conftest.py)
    proxy.add("slow.example.test", "TXT", delay_ms=300)  # rdtype None (or "*") = every type of that name
    proxy.add("gone.example.test", drop=True)            # no answer at all → the client times out
    proxy.add("broken.example.test", "MX", rcode="SERVFAIL")   # or "REFUSED" (any rcode name)
    proxy.add("big.example.test", "TXT", truncate=True)  # UDP answer with TC and no records → client uses TCP
    proxy.add("big.example.test", "A", passthrough=True) # an exception to a name-wide rule
    proxy.delay_ms = 20                                  # every answer (the bench's 20 ms per answer)
    CheckResolver(nameservers=[proxy.address])
    proxy.seen[("gone.example.test", "TXT")]             # queries received per (name, type), both transports
    proxy.max_in_flight                                  # most queries pending at once (proves parallel asking)
    proxy.clear(); proxy.stop()

Names are matched case-insensitively without the trailing dot. A rule for (name, type) wins over (name, "*").
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype


@dataclass(frozen=True)
class Fault:
    delay_ms: float = 0.0
    drop: bool = False
    rcode: str | None = None  # "SERVFAIL", "REFUSED", ...
    truncate: bool = False  # UDP only: TC set, no records (TCP queries are answered normally)
    passthrough: bool = False  # no fault (an exception to a name-wide rule)


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class FaultProxy:
    """Forwards DNS queries to `upstream` (host, port), applying the configured faults."""

    def __init__(self, upstream: tuple[str, int], *, delay_ms: float = 0.0, upstream_timeout: float = 5.0) -> None:
        self.upstream = upstream
        self.delay_ms = delay_ms
        self.upstream_timeout = upstream_timeout
        self.rules: dict[tuple[str, str], Fault] = {}
        self.seen: Counter[tuple[str, str]] = Counter()
        self.seen_tcp: Counter[tuple[str, str]] = Counter()
        self.in_flight = 0  # queries received and not yet answered (or dropped)
        self.max_in_flight = 0  # the most at once since the last clear(): shows that a client asks in parallel
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closers: list[object] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    # ------------------------------------------------------------ configuration (thread-safe)

    def add(self, name: str, rdtype: str | None = None, **fault: object) -> FaultProxy:
        rule = Fault(**fault)  # type: ignore[arg-type]
        with self._lock:
            self.rules[(_key(name), (rdtype or "*").upper())] = rule
        return self

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()
            self.seen_tcp.clear()
            self.max_in_flight = 0
        self.delay_ms = 0.0

    def rule_for(self, name: str, rdtype: str) -> Fault | None:
        with self._lock:
            return self.rules.get((name, rdtype)) or self.rules.get((name, "*"))

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._bind())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="dns-fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        for _attempt in range(20):
            udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp_sock.bind(("127.0.0.1", 0))
            port = udp_sock.getsockname()[1]
            try:
                server = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
            except OSError:
                udp_sock.close()
                continue
            transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=udp_sock)
            self._closers = [server, transport]
            self.port = port
            return
        raise OSError("no free UDP+TCP port for the DNS fault proxy")

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            return

        async def close() -> None:
            for closer in self._closers:
                closer.close()  # type: ignore[attr-defined]
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ answering

    async def answer(self, wire: bytes, tcp: bool) -> bytes | None:
        """The reply to send for query `wire`, or None to stay silent."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(wire, tcp)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, wire: bytes, tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
            question = query.question[0]
            name, rdtype = _key(question.name.to_text()), dns.rdatatype.to_text(question.rdtype)
        except (dns.exception.DNSException, IndexError, ValueError):
            query, name, rdtype = None, "", ""
        with self._lock:
            self.seen[(name, rdtype)] += 1
            if tcp:
                self.seen_tcp[(name, rdtype)] += 1
        fault = self.rule_for(name, rdtype) if query is not None else None
        delay = self.delay_ms + (fault.delay_ms if fault else 0.0)
        if delay:
            await asyncio.sleep(delay / 1000)
        if fault is not None and not fault.passthrough and query is not None:
            if fault.drop:
                return None
            if fault.rcode:
                response = dns.message.make_response(query)
                response.set_rcode(dns.rcode.from_text(fault.rcode))
                return response.to_wire()
            if fault.truncate and not tcp:
                response = dns.message.make_response(query)
                response.flags |= dns.flags.TC | dns.flags.AA
                return response.to_wire()
        return await (self._forward_tcp(wire) if tcp else self._forward_udp(wire))

    async def _forward_udp(self, wire: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(self.upstream)
            await loop.sock_sendall(sock, wire)
            return await asyncio.wait_for(loop.sock_recv(sock, 65535), self.upstream_timeout)
        except (TimeoutError, OSError):
            return None
        finally:
            sock.close()

    async def _forward_tcp(self, wire: bytes) -> bytes | None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), self.upstream_timeout)
        except (TimeoutError, OSError):
            return None
        try:
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            length = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), self.upstream_timeout))[0]
            return await asyncio.wait_for(reader.readexactly(length), self.upstream_timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            return None
        finally:
            writer.close()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
                wire = await reader.readexactly(length)
                reply = await self.answer(wire, tcp=True)
                if reply is None:
                    continue  # dropped: say nothing, let the client time out
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.proxy.answer(data, tcp=False)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)
