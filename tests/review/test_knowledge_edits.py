"""KB edits from the console: they change the running bot at once, reach a second process on the
same database through the live bus, and survive a restart (the start-up sync keeps them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.conftest import SESSION_LOOP, RuntimeFactory
from voicebot.errors import ConflictError, InputError
from voicebot.knowledge.console import KnowledgeEditor, Origin, PassageFields, origin_of
from voicebot.knowledge.embeddings import Embedder
from voicebot.knowledge.live import LiveKnowledge
from voicebot.runtime import Runtime

pytestmark = SESSION_LOOP

HANG_GUARD_SECS = 30.0
DRONE_Q = "Do you repair drones?"
DRONE_A = "Yes: our service centre repairs drones of every brand we sell; bring it in with the receipt."


def live_of(runtime: Runtime) -> LiveKnowledge:
    return LiveKnowledge(
        runtime.knowledge, runtime.knowledge_repo, runtime.tenant, runtime.live, runtime.clock
    )


def editor_of(runtime: Runtime, live: LiveKnowledge) -> KnowledgeEditor:
    return KnowledgeEditor(
        runtime.knowledge_repo, runtime.tenant, clock=runtime.clock, on_change=live.changed
    )


async def ask(runtime: Runtime, text: str) -> dict[str, object]:
    started = await runtime.chat.start(language="en")
    reply = await runtime.chat.send(started.conversation.id, text)
    return reply.to_dict()


@asynccontextmanager
async def second_runtime(first: Runtime, embedder: Embedder) -> AsyncIterator[Runtime]:
    """Another process's Runtime on the same database (its own live bus socket)."""
    other = Runtime(first.settings, embedder=embedder)
    await other.start()
    try:
        yield other
    finally:
        await other.stop()


async def test_an_added_answer_is_used_at_once(runtime: Runtime) -> None:
    before = await ask(runtime, DRONE_Q)
    assert before["action"] == "clarify" and before["reason"] == "below_threshold"
    live = live_of(runtime)
    editor = editor_of(runtime, live)
    record = await editor.add(PassageFields(text=DRONE_A, questions=(DRONE_Q, "Can you fix my drone?")))
    assert origin_of(record) is Origin.CONSOLE and record.source.startswith("console:")
    after = await ask(runtime, "can you fix a broken drone")
    assert after["action"] == "answer" and after["text"] == DRONE_A, after
    assert after["citations"][0]["passage_id"] == record.id  # type: ignore[index]

    await editor.edit(record.id, PassageFields(approved=False))
    assert (await ask(runtime, DRONE_Q))["text"] != DRONE_A
    await editor.edit(record.id, PassageFields(approved=True, text=DRONE_A + " Ask at the till."))
    assert (await ask(runtime, DRONE_Q))["text"] == DRONE_A + " Ask at the till."
    await editor.delete(record.id)
    assert (await ask(runtime, DRONE_Q))["text"] != DRONE_A + " Ask at the till."
    assert live.reloads == 4


async def test_bad_edits_are_refused(runtime: Runtime) -> None:
    live = live_of(runtime)
    editor = editor_of(runtime, live)
    with pytest.raises(InputError, match="text"):
        await editor.add(PassageFields(text="   "))
    with pytest.raises(InputError, match="language"):
        await editor.add(PassageFields(text="x", language="de"))
    with pytest.raises(InputError, match="text"):
        await editor.add(PassageFields(title="no text"))
    file_passage = next(p for p in await editor.list() if origin_of(p) is Origin.FILE)
    with pytest.raises(ConflictError, match="unapprove it here"):
        await editor.delete(file_passage.id)
    assert live.reloads == 0


async def test_another_process_reloads_on_the_bus_event(runtime: Runtime, real_embedder: Embedder) -> None:
    async with second_runtime(runtime, real_embedder) as other:
        follower = live_of(other)
        await follower.start()
        try:
            assert (await ask(other, DRONE_Q))["text"] != DRONE_A
            live = live_of(runtime)
            await editor_of(runtime, live).add(PassageFields(text=DRONE_A, questions=(DRONE_Q,)))
            async with asyncio.timeout(HANG_GUARD_SECS):
                while follower.reloads == 0:
                    await asyncio.sleep(0.02)
            assert (await ask(other, DRONE_Q))["text"] == DRONE_A
            assert live.reloads == 1  # the editing process rebuilt once, and skipped its own event
        finally:
            await follower.stop()


async def test_console_edits_survive_a_restart(make_runtime: RuntimeFactory, real_embedder: Embedder) -> None:
    runtime = await make_runtime()
    editor = editor_of(runtime, live_of(runtime))
    files = [
        p for p in await editor.list() if origin_of(p) is Origin.FILE and p.approved and p.language == "en"
    ]
    edited, hidden = files[0], files[1]
    added = await editor.add(PassageFields(text=DRONE_A, questions=(DRONE_Q,)))
    override = await editor.edit(edited.id, PassageFields(text=edited.text + " (checked by a supervisor)"))
    assert origin_of(override) is Origin.OVERRIDE and override.id == edited.id
    await editor.edit(hidden.id, PassageFields(approved=False))

    async with second_runtime(runtime, real_embedder) as restarted:  # runs the start-up sync again
        after = {
            p.id: p for p in await restarted.knowledge_repo.list(restarted.tenant.id, approved_only=False)
        }
        assert after[added.id].text == DRONE_A
        assert after[edited.id].text.endswith("(checked by a supervisor)")
        assert not after[hidden.id].approved
        assert restarted.knowledge.get(added.id) is not None
        assert restarted.knowledge.get(hidden.id) is None
        assert (await ask(restarted, DRONE_Q))["text"] == DRONE_A

    assert await editor.delete(edited.id) is Origin.OVERRIDE  # back to the file's version
    restored = await runtime.knowledge_repo.get(runtime.tenant.id, edited.id)
    assert restored.text == edited.text and origin_of(restored) is Origin.FILE
