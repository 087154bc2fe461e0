"""`bookchat healthcheck`: probe /api/health of a running server; exit 0 if healthy, else 1.

Stdlib only and nothing of the web stack: Docker runs it as an exec-form HEALTHCHECK every
interval inside an image that has no shell and no curl, so it must start fast and alone.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request

DEFAULT_PORT = 8000
MAX_BODY_BYTES = 64 * 1024
MAX_LINE = 400


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1 to 65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1 to 65535)")
    return port


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= 300:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 300 seconds")
    return seconds


def default_port(environ: dict[str, str] | None = None) -> int:
    """The port the server listens on by default: PORT, as `bookchat serve` reads it, else 8000."""
    raw = (os.environ if environ is None else environ).get("PORT", "").strip()
    try:
        return _port(raw) if raw else DEFAULT_PORT
    except argparse.ArgumentTypeError:
        return DEFAULT_PORT


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `healthcheck` subcommand."""
    parser = subparsers.add_parser(
        "healthcheck",
        help="probe a running server's /api/health (exit 0 healthy, 1 otherwise)",
        description="Probe /api/health and print one line saying why it is or is not healthy.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="server port (default: PORT or 8000)")
    parser.add_argument(
        "--timeout", type=_timeout, default=3.0, help="seconds per network step (default: 3)"
    )
    parser.set_defaults(handler=healthcheck)


def healthcheck(args: argparse.Namespace) -> int:
    """Print one line with the verdict; 0 when /api/health answers 200 with status healthy."""
    port = args.port if args.port is not None else default_port()
    healthy, line = probe(host=args.host, port=port, timeout=args.timeout)
    print(line[:MAX_LINE], flush=True)
    return 0 if healthy else 1


def probe(*, host: str, port: int, timeout: float) -> tuple[bool, str]:
    """GET http://host:port/api/health; (healthy?, one line saying why)."""
    netloc = f"[{host}]" if ":" in host else host
    url = f"http://{netloc}:{port}/api/health"
    # No proxies: an HTTP(S)_PROXY in the container's environment must not reroute a probe
    # of the container itself.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            code, body = response.status, response.read(MAX_BODY_BYTES)
    except urllib.error.HTTPError as exc:
        # 503 is the service saying starting/degraded/unhealthy; its body says why.
        code, body = exc.code, exc.read(MAX_BODY_BYTES)
        exc.close()
    except TimeoutError:
        return False, f"unhealthy: {url} did not answer within {timeout:g} s"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return False, f"unhealthy: {url} did not answer within {timeout:g} s"
        return False, f"unhealthy: cannot reach {url}: {reason}"
    return _verdict(url, code, body)


def _verdict(url: str, code: int, body: bytes) -> tuple[bool, str]:
    try:
        document = json.loads(body)
    except ValueError:
        return False, f"unhealthy: {url} answered HTTP {code} without a JSON health report"
    if not isinstance(document, dict):
        return False, f"unhealthy: {url} answered HTTP {code} without a JSON health report"
    status = str(document.get("status", "unknown"))
    if code == 200 and status == "healthy":
        return True, f"healthy: {url}"
    return False, f"{status}: {url} answered HTTP {code}{_why(document)}"


def _why(document: dict[str, object]) -> str:
    """Why start-up failed, then the services that are not up, each reason said once."""
    reasons: list[str] = []
    startup = document.get("startup")
    failed = ""
    if isinstance(startup, dict) and startup.get("error"):
        failed = str(startup["error"])
        reasons.append(f"startup: {failed}")
    services = document.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if not isinstance(service, dict) or service.get("status") == "up":
                continue
            text = f"{name} {service.get('status', 'unknown')}"
            # /api/health says why in `detail`; older servers used `error`.
            why = service.get("detail") or service.get("error")
            if why and str(why) not in failed:
                text += f" ({why})"
            reasons.append(text)
    return ": " + "; ".join(reasons) if reasons else ""
