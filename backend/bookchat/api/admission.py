"""Who may start an answer now: per-client limits, a global cap on answers, a daily LLM budget.

A public Space spends its owner's quota, so every chat passes here before anything is stored or
streamed. A refusal is a 429 with Retry-After and a JSON `code`; nothing about the stream changes
for an admitted chat, except that past the daily budget the offline answerer answers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import Scope

from bookchat.redact import describe

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# On a Space the container is reached only through Hugging Face's proxies, which sit on private
# networks: their hops are skipped when reading X-Forwarded-For from the right.
_INTERNAL_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "100.64.0.0/10")
) + tuple(ipaddress.ip_network(n) for n in ("::1/128", "fc00::/7", "fe80::/10"))
# One IPv6 subscriber gets a whole /64: limiting single addresses would limit nobody.
_IPV6_CLIENT_PREFIX = 64
_MAX_CLIENT_KEY = 64  # a proxy's garbage entry cannot become a huge dictionary key
RETRY_AFTER_BUSY_SECONDS = 5
_BUDGET_KEY = "llm-calls"


@dataclass(frozen=True)
class AdmissionPolicy:
    """The limits, as configured (0 turns a limit off)."""

    chats_per_minute: int = 10
    streams_per_client: int = 2
    concurrent_answers: int = 8
    queue: int = 16
    queue_seconds: float = 10.0
    daily_llm_calls: int = 1000
    daily_llm_calls_per_client: int = 50
    trusted_proxies: Sequence[IPNetwork] = ()
    on_space: bool = False


class Refused(Exception):
    """A chat refused before anything was stored: the reader's message and when to retry."""

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = max(1, retry_after)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.9:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(text: str, networks: Sequence[IPNetwork]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in networks)


def _client_key(text: str) -> str:
    address = _address(text)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{_IPV6_CLIENT_PREFIX}", strict=False))
    if address is not None:
        return str(address)
    return text.strip()[:_MAX_CLIENT_KEY] or "unknown"


def client_of(scope: Scope, policy: AdmissionPolicy) -> str:
    """The client a request counts against: the peer, or what a trusted proxy says it is.

    Hand-written rather than uvicorn's ProxyHeadersMiddleware: trusting every peer there takes
    the header's leftmost entry, which the client itself writes. Here the header is read from
    the right and the first hop that is not a known proxy is the client.
    """
    peer = str((scope.get("client") or ("unknown", 0))[0])
    if not (policy.on_space or _within(peer, policy.trusted_proxies)):
        return _client_key(peer)  # anyone can send the header: it is ignored
    hops = [
        hop.strip()
        for name, value in scope.get("headers", [])
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
        if hop.strip()
    ]
    proxies = (*policy.trusted_proxies, *(_INTERNAL_NETWORKS if policy.on_space else ()))
    for hop in reversed(hops):
        if not _within(hop, proxies):
            return _client_key(hop)
    return _client_key(hops[0] if hops else peer)


# A Host header is a name and an optional port; anything else (a path, credentials, spaces) is
# not used to build links.
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_of(scope: Scope, policy: AdmissionPolicy) -> str:
    """This server's origin as the reader reached it, for links to the pages bookchat serves.

    Behind a trusted proxy (a Space's terminates TLS) the scheme is the proxy's
    X-Forwarded-Proto, so links are https where the reader is; from anyone else the header is
    ignored, as X-Forwarded-For is. The host is the request's own Host header when it is a
    plain host name (a client sending another only misdirects its own links), else the address
    the server listens on.
    """
    scheme = str(scope.get("scheme") or "http")
    peer = str((scope.get("client") or ("unknown", 0))[0])
    if policy.on_space or _within(peer, policy.trusted_proxies):
        forwarded = (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower()
        if forwarded in {"http", "https"}:
            scheme = forwarded
    host = (_header(scope, b"host") or "").strip()
    if not _HOST.fullmatch(host):
        server = scope.get("server") or ("127.0.0.1", None)
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    return f"{scheme}://{host}/"


# Which daily budget a chat is past: the client's own share, or everyone's total.
BudgetSpent = Literal["client", "total"]


class Ledger(Protocol):
    """Where the day's LLM calls are counted (bookchat.stores.budget.LlmCallLedger)."""

    async def spend(
        self, client: str, *, per_client: int, total: int
    ) -> Literal["ok", "client", "total"]: ...


@dataclass
class Admitted:
    """An admitted chat: which client, and whether the LLM may answer it (else which budget
    is spent)."""

    client: str
    budget_spent: BudgetSpent | None = None

    @property
    def use_llm(self) -> bool:
        """Whether the LLM answers (not the offline answerer)."""
        return self.budget_spent is None


@dataclass
class Admission:
    """The process's counters; one per app (values only, no clients)."""

    policy: AdmissionPolicy
    _storage: MemoryStorage = field(default_factory=MemoryStorage, repr=False)
    _streams: dict[str, int] = field(default_factory=dict, repr=False)
    _answering: int = 0
    _waiters: deque[asyncio.Future[None]] = field(default_factory=deque, repr=False)
    _budget_spent_logged: bool = field(default=False, repr=False)
    # The database's count of the day's LLM calls, once the store is open (api/chat.py).
    ledger: Ledger | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # A moving window: a burst at the end of one minute and the start of the next is still
        # one minute's worth. Counted in memory, per process (a restart forgets the counts, and
        # each of N workers allows the limit). The daily budget is counted in the database
        # (self.ledger); these in-memory day counts stand in only while it cannot be reached.
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._per_minute = RateLimitItemPerMinute(max(self.policy.chats_per_minute, 1))
        self._per_day = RateLimitItemPerDay(max(self.policy.daily_llm_calls, 1))
        self._per_client_day = RateLimitItemPerDay(max(self.policy.daily_llm_calls_per_client, 1))

    @property
    def answering(self) -> int:
        """Answers being generated now."""
        return self._answering

    @property
    def waiting(self) -> int:
        """Chats waiting for an answer slot."""
        return len(self._waiters)

    def streams_of(self, client: str) -> int:
        """Answers this client has streaming now."""
        return self._streams.get(client, 0)

    @contextlib.asynccontextmanager
    async def admit(self, client: str, *, llm_backed: bool) -> AsyncIterator[Admitted]:
        """Hold a stream and an answer slot for the body; Refused if the client must wait."""
        self._take_stream(client)
        try:
            await self._count_chat(client)
            await self._take_slot()
        except BaseException:
            self._release_stream(client)
            raise
        try:
            admitted = Admitted(client=client)
            if llm_backed:
                admitted.budget_spent = await self._spend_llm_call(client)
            yield admitted
        finally:
            self._release_slot()
            self._release_stream(client)

    def _take_stream(self, client: str) -> None:
        limit = self.policy.streams_per_client
        held = self._streams.get(client, 0)
        if limit and held >= limit:
            raise Refused(
                "too_many_streams",
                f"you already have {held} answers streaming; wait for one to finish",
                RETRY_AFTER_BUSY_SECONDS,
            )
        self._streams[client] = held + 1

    def _release_stream(self, client: str) -> None:
        held = self._streams.get(client, 0) - 1
        if held > 0:
            self._streams[client] = held
        else:
            self._streams.pop(client, None)  # the table holds only clients streaming now

    async def _count_chat(self, client: str) -> None:
        if not self.policy.chats_per_minute:
            return
        if await self._limiter.hit(self._per_minute, "chat", client):
            return
        stats = await self._limiter.get_window_stats(self._per_minute, "chat", client)
        wait = math.ceil(stats.reset_time - time.time())
        raise Refused(
            "rate_limited",
            f"too many questions: at most {self.policy.chats_per_minute} a minute; "
            f"retry in {max(wait, 1)} s",
            wait,
        )

    async def _take_slot(self) -> None:
        limit = self.policy.concurrent_answers
        if not limit or (self._answering < limit and not self._waiters):
            self._answering += 1
            return
        busy = Refused(
            "server_busy",
            "bookchat is answering as many questions as it can; retry in a few seconds",
            RETRY_AFTER_BUSY_SECONDS,
        )
        if len(self._waiters) >= self.policy.queue or not self.policy.queue_seconds:
            raise busy
        # First come, first served: a freed slot is handed to the oldest waiter directly.
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.policy.queue_seconds):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release_slot()  # handed a slot while leaving: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise busy from None
            raise

    def _release_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter; the count stays
                return
        self._answering -= 1

    async def _spend_llm_call(self, client: str) -> BudgetSpent | None:
        per_client, total = self.policy.daily_llm_calls_per_client, self.policy.daily_llm_calls
        if not (per_client or total):
            return None
        verdict = await self._spend(client, per_client, total)
        if verdict == "ok":
            if total:
                self._budget_spent_logged = False
            return None
        if verdict == "client":
            # Per client, so not a warning for each: one client's share says nothing is wrong.
            log.info(
                "client %s has spent its daily share of %d LLM calls; the offline answerer "
                "answers it (BOOKCHAT_DAILY_LLM_CALLS_PER_CLIENT)",
                client,
                per_client,
            )
            return "client"
        if not self._budget_spent_logged:
            self._budget_spent_logged = True
            log.warning(
                "the daily budget of %d LLM calls is spent; the offline answerer answers until "
                "it renews at 00:00 UTC (BOOKCHAT_DAILY_LLM_CALLS)",
                total,
            )
        return "total"

    async def _spend(
        self, client: str, per_client: int, total: int
    ) -> Literal["ok", "client", "total"]:
        if self.ledger is not None:
            try:
                return await self.ledger.spend(client, per_client=per_client, total=total)
            except Exception as exc:
                # The store's own errors reach the reader when the chat stores its question;
                # here the budget still holds, per process, until the store is back.
                log.warning(
                    "the day's LLM calls could not be counted in the database (%s); counting "
                    "in this process meanwhile",
                    describe(exc),
                )
        if per_client and not await self._limiter.test(self._per_client_day, _BUDGET_KEY, client):
            return "client"
        if total and not await self._limiter.hit(self._per_day, _BUDGET_KEY):
            return "total"
        if per_client:
            await self._limiter.hit(self._per_client_day, _BUDGET_KEY, client)
        return "ok"

    async def aclose(self) -> None:
        """Stop the storage's expiry task (it lives on the app's event loop)."""
        timer = getattr(self._storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
