"""Typed configuration: process settings from the environment, and one tenant YAML file.

Both are read once at start-up. Validation errors name the file and the field
(``ConfigError("file tenants/x.yaml, field confidence.threshold: ...")``).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebot.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
DEMO_TENANT = PACKAGE_DIR / "demo" / "tenant.yaml"


def default_models_dir() -> Path:
    """models/ of the checkout when running from one, else a per-user folder."""
    repo_models = PACKAGE_DIR.parent / "models"
    if (repo_models / "manifest.toml").exists():
        return repo_models
    return Path.home() / ".local" / "share" / "voicebot" / "models"


def default_data_dir() -> Path:
    repo = PACKAGE_DIR.parent
    if (repo / "pyproject.toml").exists():
        return repo / "var"
    return Path.home() / ".local" / "share" / "voicebot"


class Settings(BaseSettings):
    """Process settings, from VOICEBOT_* environment variables (and DATABASE_URL)."""

    model_config = SettingsConfigDict(env_prefix="VOICEBOT_", extra="ignore", populate_by_name=True)

    tenant_config: Path = Field(DEMO_TENANT, description="The tenant YAML file to serve.")
    database_url: str | None = Field(
        None,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy async URL; default: a SQLite file under data_dir.",
    )
    data_dir: Path = Field(default_factory=default_data_dir, description="Where the SQLite file lives.")
    models_dir: Path = Field(default_factory=default_models_dir, description="Assembled offline models.")
    host: str = Field("127.0.0.1", description="HTTP bind address.")
    port: int = Field(8080, description="HTTP port.")
    log_level: str = Field("INFO", description="Root level of the `voicebot` logger.")
    access_log: bool = Field(False, description="Log every HTTP request (uvicorn's access log).")
    max_message_chars: int = Field(4000, description="Longer chat messages are refused with 413.")
    embed_threads: int = Field(1, description="onnxruntime threads per embedding call.")
    sip_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="SIP port (UDP and TCP, on `host`); None: no SIP. `voicebot serve` sets 5060.",
    )
    max_calls: int | None = Field(
        None, ge=1, description="Concurrent calls per process; overrides the tenant's voice.max_calls."
    )
    sip_reuse_port: bool = Field(
        False,
        description="Bind SIP (and the e-mail SMTP listener) with SO_REUSEPORT (set by `voicebot serve` "
        "with several workers).",
    )
    email: bool = Field(True, description="Run the e-mail bot when the tenant enables it (email.enabled).")
    campaigns: bool = Field(
        True, description="Place the calls of running campaigns (voice.campaign_dialer: sip needs SIP on)."
    )
    campaign_queue: Literal["auto", "local", "procrastinate"] = Field(
        "auto",
        description="Where campaign calls are queued: local (in this process) or procrastinate (PostgreSQL, "
        "shared by every process on the database); auto: procrastinate on PostgreSQL, else local.",
    )
    campaign_lease_secs: float = Field(
        30.0, gt=1, description="A campaign call whose worker is silent this long is taken as dead."
    )
    campaign_tick_secs: float = Field(0.2, gt=0, description="How often due campaign attempts are planned.")
    campaign_concurrency: int = Field(
        64, ge=1, description="Campaign calls one process makes at once at most."
    )

    redis_url: str | None = Field(
        None,
        description="redis://host:6379/0: the console's live events reach every process on every machine "
        "(default: the processes of this machine, through Unix sockets).",
    )
    session_hours: float = Field(
        12.0, gt=0, description="A console session ends after this long without use (and after 7 days)."
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto",
        description="The session cookie's Secure flag; auto: set on HTTPS (incl. X-Forwarded-Proto from a "
        "trusted proxy) and left off on plain HTTP, where a browser would drop a Secure cookie.",
    )
    login_max_failures: int = Field(
        5, ge=1, description="Wrong passwords for one user name within login_window_minutes before it waits."
    )
    login_client_max_failures: int = Field(
        20, ge=1, description="Failed logins from one client address within the window before it waits."
    )
    login_window_minutes: float = Field(15.0, gt=0, description="The login rate limit's window.")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{self.data_dir / 'voicebot.db'}"


class LowConfidenceAction(StrEnum):
    ASK_MORE = "ask_more"  # ask for more information
    REPHRASE = "rephrase"  # ask the customer to say it differently
    HANDOFF = "handoff"  # hand to a human at once


class Formality(StrEnum):
    FORMAL = "formal"
    INFORMAL = "informal"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Localised text: a mapping language code -> text, e.g. {"en": "Hello", "sl": "Pozdravljeni"}.
Localised = dict[str, str]


class ConfidencePolicy(_Strict):
    threshold: float = Field(60, ge=0, le=100, description="Percent; at or above it the bot answers.")
    below_threshold: LowConfidenceAction = Field(LowConfidenceAction.ASK_MORE)
    max_failed_turns: int = Field(2, ge=1, description="Consecutive turns without an answer -> handoff.")


class SensitiveTopic(_Strict):
    name: str
    phrases: dict[str, list[str]] = Field(description="Per language, words or phrases that signal it.")


class HandoffPolicy(_Strict):
    human_request_phrases: dict[str, list[str]] = Field(default_factory=dict)
    sensitive_topics: list[SensitiveTopic] = Field(default_factory=list)
    # intents that always go to a human (e.g. "complaint", "cancel_contract")
    intents: list[str] = Field(default_factory=list)


class PhraseRule(_Strict):
    """Replace a phrase in every reply (case-insensitive), per language ('*' = all)."""

    language: str = "*"
    replace: str
    with_: str = Field(alias="with")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Tone(_Strict):
    formality: Formality = Formality.FORMAL
    greeting: Localised = Field(default_factory=dict)
    sign_off: Localised = Field(default_factory=dict)
    phrase_rules: list[PhraseRule] = Field(default_factory=list)


class LLMConfig(_Strict):
    enabled: bool = False
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "local"
    api_key_env: str = Field("VOICEBOT_LLM_API_KEY", description="Environment variable holding the key.")
    timeout_s: float = Field(3.0, gt=0)
    rephrase_answers: bool = True
    intent_fallback: bool = True


class RestCRMConfig(_Strict):
    base_url: str
    token_env: str | None = None
    timeout_s: float = 5.0
    # URL templates relative to base_url, e.g. "/customers?phone={phone}"
    templates: dict[str, str] = Field(default_factory=dict)


class CRMConfig(_Strict):
    adapter: Literal["sql", "rest"] = "sql"
    seed: Path | None = Field(None, description="YAML with demo records loaded into the SQL adapter.")
    rest: RestCRMConfig | None = None


class SipTrunkRegistration(_Strict):
    """Register voicebot's contact at a SIP trunk or PBX so calls to ``aor`` reach it."""

    registrar: str = Field(description="Registrar URI, e.g. sip:pbx.example.com;transport=tcp.")
    aor: str = Field(description="Address of record, e.g. sip:reception@pbx.example.com.")
    username: str | None = Field(None, description="Digest user name (default: none).")
    password_env: str | None = Field(None, description="Environment variable holding the digest password.")
    expires: int = Field(3600, ge=60, description="Requested registration lifetime in seconds.")


class SipOutboundTrunk(_Strict):
    """Where outbound campaign calls go: the trunk or PBX that places them in the phone network."""

    uri: str = Field(
        "sip:{number}@127.0.0.1:5080",
        description="Request-URI of an outbound call; {number} is the contact's E.164 number.",
    )
    username: str | None = Field(None, description="Digest user name for the trunk (401/407 challenges).")
    password_env: str | None = Field(None, description="Environment variable holding the trunk password.")
    from_domain: str | None = Field(
        None, description="Host of the From URI carrying the caller ID; default: voicebot's SIP address."
    )

    @field_validator("uri")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{number}" not in value or not value.startswith(("sip:", "sips:")):
            raise ValueError("needs a sip: URI with a {number} placeholder")
        return value


class SipConfig(_Strict):
    """Native SIP calls (voicebot.inbound.sip): who may call, media, transfer."""

    allowed_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8"],
        description="Source networks that may send INVITEs, and the only networks media is sent to "
        "(SDP addresses outside them are refused with 488).",
    )
    digest_users: dict[str, str] = Field(
        default_factory=dict,
        description="Digest authentication for inbound INVITEs: user name -> environment variable "
        "holding the password. Empty: no authentication (access by network only).",
    )
    realm: str = Field("voicebot", description="Digest realm.")
    ring_secs: float = Field(0.0, ge=0, le=60, description="Ring (180) this long before answering.")
    rtp_ports: tuple[int, int] = Field((20000, 29999), description="RTP/RTCP port range (even/odd pairs).")
    media_address: str | None = Field(
        None, description="Address put in SDP and bound for RTP; default: the SIP bind address."
    )
    rtp_timeout_secs: float = Field(30.0, gt=0, description="Hang up after this long without RTP.")
    jitter_buffer_ms: tuple[int, int] = Field(
        (10, 200),
        description="Adaptive jitter buffer: [least, most] playout delay in ms, chosen from the measured "
        "interarrival jitter (3 x jitter + 5 ms).",
    )
    transfer_uri: str = Field(
        "sip:{number}@127.0.0.1:5080",
        description="How a voice.transfer number becomes a SIP URI ({number}); sip: targets are used as is.",
    )
    transfer_mode: Literal["blind", "warm"] = Field(
        "blind",
        description="blind: REFER the caller to the target. warm: call the target first, tell the agent "
        "the handoff summary, then bridge the caller.",
    )
    retry_after_secs: int = Field(5, ge=1, description="Retry-After of a 503 when every line is busy.")
    trunk: SipTrunkRegistration | None = Field(None, description="Optional trunk registration.")
    outbound: SipOutboundTrunk = Field(
        default_factory=SipOutboundTrunk, description="Outbound campaign calls: trunk URI and credentials."
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a network: {net!r}") from exc
        return value

    @field_validator("jitter_buffer_ms")
    @classmethod
    def _jitter(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 0 <= low <= high <= 1000:
            raise ValueError("jitter_buffer_ms must be [least, most] with 0 <= least <= most <= 1000")
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _ports(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1024 <= low < high <= 65535 or high - low < 2:
            raise ValueError("rtp_ports must be [low, high] with 1024 <= low < high <= 65535")
        return value


class VoiceConfig(_Strict):
    """Phone and browser calls (voicebot.pipeline / voicebot.inbound). Times in seconds."""

    enabled: bool = Field(False, description="Load the speech models at start and answer calls.")
    stt_model: str = Field("whisper-base", description="Folder under models_dir with the Whisper model.")
    stt_language: str = Field("en", description="Language Whisper transcribes in.")
    cpu_threads: int = Field(2, ge=1, description="CTranslate2 threads of the shared Whisper model.")
    vad_start_secs: float = Field(0.2, gt=0, description="Speech this long starts a caller turn.")
    vad_stop_secs: float = Field(0.25, gt=0, description="Silence this long ends a caller turn.")
    vad_confidence: float = Field(0.7, gt=0, lt=1, description="Silero speech probability threshold.")
    smart_turn: bool = Field(
        False,
        description="Ask pipecat's local smart-turn v3 model (~160 ms CPU per decision) whether the "
        "caller finished, instead of ending the turn on VAD silence alone.",
    )
    smart_turn_stop_secs: float = Field(
        2.0,
        gt=0,
        le=30,
        description="With smart_turn: the longest silence before the turn ends anyway.",
    )
    silence_prompt_secs: float = Field(8.0, gt=0, description="Caller silence before a prompt.")
    silence_prompts: int = Field(2, ge=0, description="Prompts before hanging up on a silent caller.")
    max_call_secs: float = Field(900.0, gt=0, description="The call ends after this long.")
    max_calls: int = Field(8, ge=1, description="Concurrent carrier calls per process; more are refused.")
    record_calls: bool = Field(
        False,
        description="Record each call's mixed audio (caller and bot or agent) as WAV under "
        "data_dir/recordings/<tenant>/ for review; tell callers in the greeting where the law asks.",
    )
    dtmf_pause_secs: float = Field(2.0, gt=0, description="Digits are sent after this pause (or on '#').")
    dtmf_menu: dict[str, Localised] = Field(
        default_factory=dict,
        description="'Press 1 for ...': a single key -> what it means, said to the dialogue as the caller's "
        "words, per language (e.g. {'1': {'en': 'Where is my order?'}}). Longer digit strings are data.",
    )
    dtmf_menu_prompt: Localised = Field(
        default_factory=dict, description="Spoken after the greeting when a menu is configured."
    )
    transfer: dict[str, str] = Field(
        default_factory=dict,
        description="Handoff transfer targets: intent (or handoff reason) -> phone number; 'default' too.",
    )
    sip: SipConfig = Field(default_factory=SipConfig, description="Native SIP/RTP calls.")
    recording: bool = Field(False, description="Record calls (stereo WAV: caller left, bot right).")
    recordings_dir: Path | None = Field(None, description="Where recordings go; default data_dir/recordings.")
    recording_announcement: Localised = Field(
        default_factory=lambda: {"en": "This call is recorded for quality purposes."},
        description="Played before the greeting when recording.",
    )
    silence_prompt: Localised = Field(
        default_factory=lambda: {"en": "Are you still there? How can I help you?"},
        description="Said after silence_prompt_secs of caller silence.",
    )
    goodbye: Localised = Field(
        default_factory=lambda: {"en": "I have not heard anything, so I will end the call now. Goodbye!"},
        description="Said before hanging up on silence or at the maximum call length.",
    )
    twilio_auth_token_env: str = Field(
        "TWILIO_AUTH_TOKEN",
        description="Environment variable with the Twilio auth token: enables signature checks, "
        "REST hang-up and transfer.",
    )
    twilio_account_sid_env: str = Field(
        "TWILIO_ACCOUNT_SID", description="Environment variable, Account SID."
    )
    twilio_api_base: str = Field(
        "https://api.twilio.com", description="Base URL of the Twilio REST API (or a compatible carrier's)."
    )
    campaign_dialer: Literal["sip", "twilio"] = Field(
        "sip",
        description="How campaign calls are placed: sip (the trunk in sip.outbound) or twilio (REST call "
        "creation; the answered call comes back over the media stream; needs public_url).",
    )
    public_url: str | None = Field(
        None,
        description="The base URL the carrier reaches this server at (e.g. https://bot.example.com); "
        "Twilio campaign calls put their webhook URLs under it.",
    )

    @model_validator(mode="after")
    def _smart_turn_outlasts_vad(self) -> VoiceConfig:
        # the model is asked on each VAD stop; its silence fallback must come after that
        if self.smart_turn and self.smart_turn_stop_secs <= self.vad_stop_secs:
            raise ValueError("smart_turn_stop_secs must be longer than vad_stop_secs")
        return self

    @field_validator("public_url", "twilio_api_base")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("needs an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _twilio_dialer_is_reachable(self) -> VoiceConfig:
        # Twilio must call our webhooks back; without the address no campaign call could be answered
        if self.campaign_dialer == "twilio" and not self.public_url:
            raise ValueError("public_url is required with campaign_dialer: twilio")
        return self


class ImapMailbox(_Strict):
    """One mailbox the e-mail bot reads (IMAP IDLE where offered, polling otherwise)."""

    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535, description="Default: 993 with ssl, 143 without.")
    security: Literal["ssl", "none"] = Field(
        "ssl", description="ssl: implicit TLS (IMAPS). none: plain IMAP, for a server on this machine."
    )
    ca_file: Path | None = Field(None, description="PEM file of CAs to trust (default: the system's).")
    username: str
    password_env: str = Field(description="Environment variable holding the password.")
    mailbox: str = "INBOX"
    idle: bool = Field(True, description="Use IDLE when the server offers it.")
    poll_secs: float = Field(30.0, gt=0, description="Polling interval without IDLE.")

    @property
    def resolved_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)

    @property
    def source(self) -> str:
        """The key the bookkeeping of this mailbox is stored under."""
        return f"imap://{self.username}@{self.host}:{self.resolved_port}/{self.mailbox}"


class SmtpOut(_Strict):
    """Where the e-mail bot's replies are sent."""

    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535, description="Default: 587 (starttls), 465 (ssl), 25.")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    ca_file: Path | None = Field(None, description="PEM file of CAs to trust (default: the system's).")
    username: str | None = None
    password_env: str | None = Field(None, description="Environment variable holding the password.")
    timeout_secs: float = Field(30.0, gt=0)

    @property
    def resolved_port(self) -> int:
        return self.port or {"starttls": 587, "ssl": 465, "none": 25}[self.security]


class SmtpListener(_Strict):
    """An SMTP server for mail routed straight to the bot (e.g. by the company's mail relay)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    max_message_bytes: int = Field(10 << 20, ge=1024)


class EmailConfig(_Strict):
    """The e-mail bot (voicebot.text_channels.email_*)."""

    enabled: bool = False
    address: str = Field("support@example.com", description="The bot's address: From of its replies.")
    display_name: str | None = Field(None, description="Display name of the From (default: tenant name).")
    recipients: list[str] = Field(
        default_factory=list,
        description="Addresses the SMTP listener accepts mail for (default: only 'address').",
    )
    auto_reply: bool = Field(True, description="False: every answer waits as a draft for approval.")
    attachments_need_human: bool = True
    rate_limit_per_hour: int = Field(
        10, ge=1, description="Replies to one sender per hour; more of its messages wait as drafts."
    )
    workers: int = Field(4, ge=1, le=64, description="Messages decided concurrently.")
    imap: list[ImapMailbox] = Field(default_factory=list)
    smtp: SmtpOut | None = None
    listener: SmtpListener = Field(default_factory=SmtpListener)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2] or "localhost"

    @model_validator(mode="after")
    def _sending_needs_smtp(self) -> EmailConfig:
        if self.enabled and self.smtp is None:
            raise ValueError("an enabled e-mail bot needs an 'smtp' section to send its replies")
        if "@" not in self.address:
            raise ValueError(f"address {self.address!r} is not an e-mail address")
        return self


class Tenant(_Strict):
    """One tenant's YAML file. Relative paths are resolved against the file's folder."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    name: str
    languages: list[str] = Field(min_length=1)
    timezone: str = "UTC"
    confidence: ConfidencePolicy = Field(default_factory=ConfidencePolicy)
    handoff: HandoffPolicy = Field(default_factory=HandoffPolicy)
    tone: Tone = Field(default_factory=Tone)
    knowledge: list[Path] = Field(default_factory=list, description="KB folders or files.")
    intents: Path | None = Field(None, description="Intent YAML: name -> examples per language.")
    crm: CRMConfig = Field(default_factory=CRMConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    voice: VoiceConfig = Field(default_factory=VoiceConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    messages: dict[str, Localised] = Field(
        default_factory=dict, description="Prompt texts by key, per language (override the built-ins)."
    )
    working_hours: tuple[int, int] = (8, 17)
    source: Path | None = Field(None, exclude=True, description="The file this tenant was read from.")

    @field_validator("languages")
    @classmethod
    def _languages_known(cls, value: list[str]) -> list[str]:
        for code in value:
            if not (2 <= len(code) <= 3 and code.isalpha() and code.islower()):
                raise ValueError(f"{code!r} is not an ISO 639-1 language code")
        return value

    @property
    def threshold(self) -> float:
        """The operator's percentage as a probability."""
        return self.confidence.threshold / 100.0


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_tenant(path: Path | str) -> Tenant:
    """Read and validate one tenant YAML; every error names the file and the field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("the file does not exist", file=str(path)) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping", file=str(path))
    try:
        tenant = Tenant.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(first["msg"], file=str(path), field=_field_path(first["loc"])) from exc
    base = path.resolve().parent
    tenant.source = path.resolve()
    tenant.knowledge = [p if p.is_absolute() else base / p for p in tenant.knowledge]
    if tenant.intents is not None and not tenant.intents.is_absolute():
        tenant.intents = base / tenant.intents
    if tenant.crm.seed is not None and not tenant.crm.seed.is_absolute():
        tenant.crm.seed = base / tenant.crm.seed
    for tls in [*tenant.email.imap, tenant.email.smtp]:
        if tls is not None and tls.ca_file is not None and not tls.ca_file.is_absolute():
            tls.ca_file = base / tls.ca_file
    for i, kb in enumerate(tenant.knowledge):
        if not kb.exists():
            raise ConfigError(f"{kb} does not exist", file=str(path), field=f"knowledge.{i}")
    if tenant.intents is not None and not tenant.intents.exists():
        raise ConfigError(f"{tenant.intents} does not exist", file=str(path), field="intents")
    if tenant.crm.adapter == "rest" and tenant.crm.rest is None:
        raise ConfigError("adapter 'rest' needs a 'rest' section", file=str(path), field="crm.rest")
    return tenant


def llm_api_key(config: LLMConfig) -> SecretStr | None:
    import os

    value = os.environ.get(config.api_key_env)
    return SecretStr(value) if value else None
