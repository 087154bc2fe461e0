"""Settings read from the environment, validated and normalised once at startup."""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bookchat.paths import default_data_dir

log = logging.getLogger(__name__)

DEFAULT_GEMINI_MODEL = "gemini-2.5-flash"
DEFAULT_EMBEDDING_MODEL = "gemini-embedding-001"

# Who may show the page at / in a frame: itself, and the Hugging Face Space page, which shows
# the app in an iframe. BOOKCHAT_FRAME_ANCESTORS replaces this list.
DEFAULT_FRAME_ANCESTORS = ("'self'", "https://huggingface.co")
# A CSP source: 'self' or 'none', a scheme (https:), or an origin whose host may start with *.
_FRAME_SOURCE = re.compile(
    r"'self'|'none'|https?:|https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?"
)

# libpq options that psycopg accepts in a connection string; Neon hands out URLs with
# sslmode=require&channel_binding=require, both of which psycopg understands as they are.
_LIBPQ_QUERY_KEYS_DROPPED = {"pgbouncer"}  # a Prisma-ism some dashboards add; libpq rejects it


def normalise_database_url(raw: str) -> str:
    """Turn the URL forms Neon, Heroku and others hand out into a SQLAlchemy async URL."""
    url = raw.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("DATABASE_URL must look like postgresql://user:password@host/db")
    scheme = scheme.lower()
    if scheme in {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg_async"}:
        scheme = "postgresql+psycopg"
    elif scheme in {"sqlite", "sqlite+aiosqlite"}:
        return f"sqlite+aiosqlite://{rest}"
    else:
        raise ValueError(
            f"DATABASE_URL scheme {scheme!r} is not supported: use postgresql:// (or leave it "
            "unset for SQLite)"
        )
    parts = urlsplit(f"{scheme}://{rest}")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _LIBPQ_QUERY_KEYS_DROPPED]
    return urlunsplit(parts._replace(query=urlencode(query)))


class Settings(BaseSettings):
    """Everything bookchat reads from the environment (names as documented in the README)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    gemini_api_key: SecretStr | None = Field(default=None, validation_alias="GEMINI_API_KEY")
    gemini_model: str = Field(default=DEFAULT_GEMINI_MODEL, validation_alias="GEMINI_MODEL")
    gemini_embedding_model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL, validation_alias="GEMINI_EMBEDDING_MODEL"
    )
    gemini_base_url: str | None = Field(default=None, validation_alias="GEMINI_BASE_URL")
    # Seconds a Gemini request may take before the answer is abandoned (per attempt).
    gemini_timeout: float = Field(default=30.0, gt=0, validation_alias="GEMINI_TIMEOUT")
    embedding_dimensions: int = Field(
        default=768, ge=8, le=3072, validation_alias="BOOKCHAT_EMBEDDING_DIMENSIONS"
    )
    # auto: Gemini embeddings when GEMINI_API_KEY is set, the offline embedder otherwise.
    embedder: Literal["auto", "gemini", "local"] = Field(
        default="auto", validation_alias="BOOKCHAT_EMBEDDER"
    )

    qdrant_url: str | None = Field(default=None, validation_alias="QDRANT_URL")
    qdrant_api_key: SecretStr | None = Field(default=None, validation_alias="QDRANT_API_KEY")
    qdrant_collection: str = Field(
        default="docusaurus-book", min_length=1, validation_alias="QDRANT_COLLECTION"
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="ALLOWED_ORIGINS"
    )
    frame_ancestors: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_FRAME_ANCESTORS),
        validation_alias="BOOKCHAT_FRAME_ANCESTORS",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", validation_alias="LOG_LEVEL"
    )
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="PORT")
    data_dir: Path = Field(
        default_factory=default_data_dir, validation_alias=AliasChoices("BOOKCHAT_DATA_DIR")
    )
    # A prebuilt embedded index (the image's baked book), possibly read-only; unset: the index
    # lives under BOOKCHAT_DATA_DIR. Everything written at run time stays under the data dir.
    index_dir: Path | None = Field(default=None, validation_alias="BOOKCHAT_INDEX_DIR")
    # Ingest the bundled sample book into an empty embedded collection at startup.
    sample_book: bool = Field(default=True, validation_alias="BOOKCHAT_SAMPLE_BOOK")
    # Where the sample book's citations point: empty, bookchat's own /docs/... pages; a URL such
    # as http://localhost:3000 when the sample book runs under `docusaurus start` there.
    sample_book_url: str = Field(default="", validation_alias="BOOKCHAT_SAMPLE_BOOK_URL")

    # Abuse limits, on by default with values for a small public Space; 0 turns one off.
    # A reader asks a few questions a minute; one client cannot hold more than a few streams.
    chats_per_minute: int = Field(default=10, ge=0, validation_alias="BOOKCHAT_CHATS_PER_MINUTE")
    streams_per_client: int = Field(default=2, ge=0, validation_alias="BOOKCHAT_STREAMS_PER_CLIENT")
    # Answers generated at once for everyone, and how many more may wait (how long) for one.
    concurrent_llm_calls: int = Field(
        default=8, ge=0, validation_alias="BOOKCHAT_CONCURRENT_LLM_CALLS"
    )
    llm_queue: int = Field(default=16, ge=0, validation_alias="BOOKCHAT_LLM_QUEUE")
    llm_queue_seconds: float = Field(
        default=10.0, ge=0, le=120, validation_alias="BOOKCHAT_LLM_QUEUE_SECONDS"
    )
    # Gemini answers per UTC day, counted in the conversation database (shared by workers, kept
    # across restarts); past it the offline answerer answers (and says so).
    daily_llm_calls: int = Field(default=1000, ge=0, validation_alias="BOOKCHAT_DAILY_LLM_CALLS")
    # One client's share of them: past it that client gets offline answers, others still Gemini.
    daily_llm_calls_per_client: int = Field(
        default=50, ge=0, validation_alias="BOOKCHAT_DAILY_LLM_CALLS_PER_CLIENT"
    )
    # Proxies whose X-Forwarded-For names the client (addresses or networks, comma-separated).
    trusted_proxies: Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode] = (
        Field(default_factory=list, validation_alias="BOOKCHAT_TRUSTED_PROXIES")
    )
    # Set by Hugging Face in every Space: only the Space's proxy can reach the container there.
    space_id: str | None = Field(default=None, validation_alias="SPACE_ID")
    # public: /api/health names no host, user, URL or file path (anyone can read it); full: the
    # owner's view, with where each dependency is and the exact cause of a failure.
    health_detail: Literal["public", "full"] = Field(
        default="public", validation_alias="BOOKCHAT_HEALTH_DETAIL"
    )
    # FastAPI's Swagger UI and ReDoc (at /api/docs, /api/redoc) load scripts from a CDN: off
    # unless the owner wants them; /openapi.json is served either way.
    api_docs: Literal["off", "on"] = Field(default="off", validation_alias="BOOKCHAT_API_DOCS")
    # `bookchat serve`: open connections served at once (more get 503) and idle keep-alive.
    max_connections: int = Field(default=200, ge=1, validation_alias="BOOKCHAT_MAX_CONNECTIONS")
    # On SIGTERM, open answers get this long to finish; shortly before it ends, those still
    # streaming end with a `server_restarting` event and their partial answers are stored.
    shutdown_seconds: float = Field(
        default=10.0, gt=0, le=600, validation_alias="BOOKCHAT_SHUTDOWN_SECONDS"
    )
    keepalive_seconds: float = Field(
        default=5.0, gt=0, le=300, validation_alias="BOOKCHAT_KEEPALIVE_SECONDS"
    )
    # `bookchat serve` worker processes; 0 chooses (backends.worker_processes): one per core
    # with PostgreSQL (the embedded index then read-only in each), one with SQLite.
    workers: int = Field(default=0, ge=0, le=64, validation_alias="BOOKCHAT_WORKERS")

    @field_validator("gemini_api_key", "qdrant_api_key", mode="before")
    @classmethod
    def _blank_secret_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("index_dir", mode="before")
    @classmethod
    def _blank_path_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("qdrant_url", "gemini_base_url", mode="before")
    @classmethod
    def _http_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("must be a URL string")
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, such as https://host:6333")
        return url

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("must be a URL string")
        return normalise_database_url(value)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        # Empty means no cross-origin access at all, never "*".
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(",")
        origins = []
        for origin in value:  # type: ignore[union-attr]
            origin = str(origin).strip().rstrip("/")
            if not origin:
                continue
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in {"http", "https"} or not parts.netloc):
                raise ValueError(
                    f"{origin!r} is not an origin: use scheme://host[:port], comma-separated"
                )
            origins.append(origin)
        return origins

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(",")
        networks = []
        for item in value:  # type: ignore[union-attr]
            text = str(item).strip()
            if not text:
                continue
            try:
                # strict=False: 10.0.0.7/8 means the network 10.0.0.0/8, as in nginx.
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(
                    f"{text!r} is not an IP address or network: use e.g. 10.0.0.0/8,127.0.0.1"
                ) from None
        return networks

    @field_validator("space_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _blank_is_default(cls, value: object) -> object:
        # An empty BOOKCHAT_DATA_DIR= means "not set", not the current directory.
        if isinstance(value, str) and not value.strip():
            return default_data_dir()
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_dir(cls, value: Path) -> Path:
        # Absolute once, so every message names the same folder wherever it was printed from.
        return value.expanduser().absolute()

    @field_validator("frame_ancestors", mode="before")
    @classmethod
    def _frame_ancestors(cls, value: object) -> object:
        # Each value becomes part of a header: only well-formed CSP sources get through.
        if value is None:
            return list(DEFAULT_FRAME_ANCESTORS)
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        sources = [str(source).strip().rstrip("/") for source in value]  # type: ignore[union-attr]
        sources = [source for source in sources if source]
        if not sources:
            return ["'none'"]
        for source in sources:
            if not _FRAME_SOURCE.fullmatch(source):
                raise ValueError(
                    f"{source!r} is not a frame source: use 'self', 'none' or origins such as "
                    "https://docs.example.org, separated by spaces or commas"
                )
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("'none' cannot be combined with other frame sources")
        return sources

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def sqlalchemy_url(self) -> str:
        """The conversation store's URL: DATABASE_URL, or SQLite under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'bookchat.sqlite3').resolve()}"

    def secrets(self) -> tuple[str, ...]:
        """The configured secret values, for bookchat.redact: API keys, the database password."""
        values = [
            key.get_secret_value()
            for key in (self.gemini_api_key, self.qdrant_api_key)
            if key is not None
        ]
        if self.database_url and (password := urlsplit(self.database_url).password):
            values.append(password)
        return tuple(values)

    @property
    def qdrant_path(self) -> Path:
        """Where the embedded (local-mode) Qdrant keeps its files: BOOKCHAT_INDEX_DIR, else
        `qdrant` under the data dir. (`bookchat serve` serves a read-only one from a copy.)"""
        return self.index_dir if self.index_dir is not None else self.data_dir / "qdrant"

    @property
    def embedded_qdrant(self) -> bool:
        return self.qdrant_url is None


def _field_of(name: str) -> str:
    """The Settings field read from environment variable `name`."""
    for field_name, field in Settings.model_fields.items():
        if name in re.findall(r"[A-Z][A-Z0-9_]+", str(field.validation_alias)):
            return field_name
    raise KeyError(name)


def configuration_error(name: str, message: str) -> str:
    """One line naming the bad variable and what is wrong with it (never its value)."""
    # pydantic prefixes a validator's own ValueError text with "Value error, "; the
    # sentence after it was written for the reader.
    message = message.removeprefix("Value error, ")
    if message.startswith(f"{name} "):
        return f"bookchat: configuration: {message}"
    return f"bookchat: configuration: {name} is invalid: {message}"


def load_settings(*, unused: Collection[str] = ()) -> Settings:
    """Read Settings from the environment; a bad value is one clear line and exit code 2.

    `unused` names variables the command never reads (DATABASE_URL for `bookchat ingest`):
    they keep their defaults, so a bad value there cannot stop the command.
    """
    defaults = {}
    for name in unused:
        field = Settings.model_fields[_field_of(name)]
        defaults[name] = field.get_default(call_default_factory=True)
    try:
        return Settings(**defaults)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "configuration"
            sys.stderr.write(configuration_error(name, str(error["msg"])) + "\n")
        raise SystemExit(2) from None
