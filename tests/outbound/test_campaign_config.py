from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from voicebot.errors import ConfigError, InputError
from voicebot.outbound.campaign_config import (
    AnswerType,
    CallingWindow,
    CampaignKind,
    VoicemailAction,
    Weekday,
    in_calling_window,
    load_campaign,
    next_window_start,
)

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
LJ = "Europe/Ljubljana"


def test_shipped_campaigns_load() -> None:
    files = sorted(CAMPAIGNS.glob("*.yaml"))
    assert [f.name for f in files] == [
        "appointment-confirmation.yaml",
        "csat-survey.yaml",
        "payment-reminder.yaml",
    ]
    loaded = {f.stem: load_campaign(f) for f in files}
    for campaign in loaded.values():
        assert campaign.languages == ["en", "sl"]
        assert campaign.caller_id.startswith("+386")
    appointment = loaded["appointment-confirmation"]
    assert appointment.kind is CampaignKind.APPOINTMENT_CONFIRMATION
    assert {"confirmed", "rescheduled", "cancelled", "offer_slots"} <= set(appointment.script["en"])
    assert appointment.voicemail.action is VoicemailAction.LEAVE_MESSAGE
    assert appointment.retry_delay.no_answer == 7200 and appointment.retry_delay.busy == 900
    payment = loaded["payment-reminder"]
    assert {"amount", "due_date", "promised_date"} <= payment.variables()
    assert {"promise_recorded", "invoice_sent", "handoff"} <= set(payment.script["sl"])
    assert payment.voicemail.action is VoicemailAction.HANG_UP and payment.voicemail.message is None
    survey = loaded["csat-survey"]
    assert [q.type for q in survey.questions] == [
        AnswerType.RATING_1_5,
        AnswerType.YES_NO,
        AnswerType.FREE_TEXT,
    ]
    assert survey.retry_delay.voicemail == 86400
    assert survey.calling_window.end == time(19, 30)


def _base() -> dict[str, Any]:
    raw = yaml.safe_load((CAMPAIGNS / "appointment-confirmation.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _survey() -> dict[str, Any]:
    raw = yaml.safe_load((CAMPAIGNS / "csat-survey.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def _delete(path: str) -> Edit:
    def edit(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return edit


CASES: list[tuple[str, Callable[[], dict[str, Any]], Edit, str]] = [
    ("short caller id", _base, _set("caller_id", "+1234"), "caller_id"),
    ("national caller id", _base, _set("caller_id", "01 555 0100"), "caller_id"),
    ("numeric caller id", _base, _set("caller_id", 38615550100), "caller_id"),
    ("unknown kind", _base, _set("kind", "robocall"), "kind"),
    ("bad id", _base, _set("id", "Has Spaces"), "id"),
    ("unclosed placeholder", _base, _set("script.en.greeting", "Hello {name"), "script.en.greeting"),
    ("positional placeholder", _base, _set("script.sl.greeting", "Hello {0}"), "script.sl.greeting"),
    ("attribute placeholder", _base, _set("script.en.purpose", "On {a.b}"), "script.en.purpose"),
    ("conversion", _base, _set("script.en.greeting", "Hello {name!r}"), "script.en.greeting"),
    ("format spec", _base, _set("script.en.greeting", "Hello {name:>9}"), "script.en.greeting"),
    ("empty prompt", _base, _set("script.en.greeting", ""), "script.en.greeting"),
    ("missing prompt", _base, _delete("script.sl.cancelled"), "script.sl"),
    ("no script", _base, _set("script", {}), "script"),
    ("yaml sexagesimal time", _base, _set("calling_window.start", 1050), "calling_window.start"),
    ("hour out of range", _base, _set("calling_window.start", "25:00"), "calling_window.start"),
    ("end before start", _base, _set("calling_window.end", "08:00"), "calling_window.end"),
    ("unknown day", _base, _set("calling_window.days", ["mon", "funday"]), "calling_window.days.1"),
    ("no days", _base, _set("calling_window.days", []), "calling_window.days"),
    ("bad holiday", _base, _set("calling_window.holidays", ["2026-13-01"]), "calling_window.holidays.0"),
    ("zero attempts", _base, _set("max_attempts", 0), "max_attempts"),
    ("bad duration", _base, _set("retry_delay.busy", "soon"), "retry_delay.busy"),
    ("boolean duration", _base, _set("retry_delay.busy", True), "retry_delay.busy"),
    ("zero duration", _base, _set("retry_delay.no_answer", "0m"), "retry_delay.no_answer"),
    ("missing delay", _base, _delete("retry_delay.failed"), "retry_delay.failed"),
    ("zero rate", _base, _set("calls_per_second", 0), "calls_per_second"),
    ("zero concurrency", _base, _set("max_concurrent_calls", 0), "max_concurrent_calls"),
    ("unknown voicemail action", _base, _set("voicemail.action", "sing"), "voicemail.action"),
    ("leave without message", _base, _delete("voicemail.message"), "voicemail.message"),
    ("hang up with message", _base, _set("voicemail.action", "hang_up"), "voicemail.message"),
    ("message language", _base, _delete("voicemail.message.sl"), "voicemail.message"),
    ("message placeholder", _base, _set("voicemail.message.en", "Hi {"), "voicemail.message.en"),
    ("unknown field", _base, _set("colour", "blue"), "colour"),
    ("questions outside a survey", _base, lambda r: r.update(questions=_survey()["questions"]), "questions"),
    ("survey without questions", _survey, _set("questions", []), "questions"),
    ("unknown answer type", _survey, _set("questions.0.type", "rating_1_10"), "questions.0.type"),
    ("duplicate question", _survey, _set("questions.2.id", "satisfaction"), "questions.2.id"),
    ("question language", _survey, _delete("questions.1.text.sl"), "questions.1.text"),
]


@pytest.mark.parametrize(("base", "edit", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_error_names_file_and_field(
    tmp_path: Path, base: Callable[[], dict[str, Any]], edit: Edit, field: str
) -> None:
    raw = base()
    edit(raw)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    assert info.value.file == str(path)
    assert info.value.field == field
    assert str(info.value).startswith(f"file {path}, field {field}: ")


def test_unquoted_time_in_yaml_names_the_field(tmp_path: Path) -> None:
    text = (CAMPAIGNS / "payment-reminder.yaml").read_text(encoding="utf-8")
    path = tmp_path / "p.yaml"
    path.write_text(text.replace('end: "17:00"', "end: 17:00"), encoding="utf-8")
    with pytest.raises(ConfigError, match="quoted 'HH:MM'") as info:
        load_campaign(path)
    assert info.value.field == "calling_window.end"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), ("a: [b", "not valid YAML"), ("- a\n- b\n", "top level")],
)
def test_file_errors_name_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_campaign(path)
    assert info.value.file == str(path) and info.value.field is None


# --- calling windows: injected time only -----------------------------------------------------

OFFICE = CallingWindow(start=time(9), end=time(17), holidays=[date(2026, 12, 25)])
EVERY_DAY = CallingWindow(days=list(Weekday), start=time(9), end=time(17))


def _lj(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(LJ))


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_window_hours_are_start_inclusive_end_exclusive() -> None:
    assert in_calling_window(OFFICE, _lj(2026, 11, 24, 9, 0), LJ)  # a Tuesday
    assert in_calling_window(OFFICE, _lj(2026, 11, 24, 16, 59), LJ)
    assert not in_calling_window(OFFICE, _lj(2026, 11, 24, 8, 59), LJ)
    assert not in_calling_window(OFFICE, _lj(2026, 11, 24, 17, 0), LJ)
    assert next_window_start(OFFICE, _lj(2026, 11, 24, 10, 15), LJ) == _lj(2026, 11, 24, 10, 15)
    assert next_window_start(OFFICE, _lj(2026, 11, 24, 7, 0), LJ) == _lj(2026, 11, 24, 9, 0)
    assert next_window_start(OFFICE, _lj(2026, 11, 24, 17, 0), LJ) == _lj(2026, 11, 25, 9, 0)


def test_weekend_is_skipped() -> None:
    saturday = _lj(2026, 11, 28, 11, 0)
    assert not in_calling_window(OFFICE, saturday, LJ)
    assert next_window_start(OFFICE, saturday, LJ) == _lj(2026, 11, 30, 9, 0)
    friday_evening = _lj(2026, 11, 27, 18, 0)
    assert next_window_start(OFFICE, friday_evening, LJ) == _lj(2026, 11, 30, 9, 0)


def test_holiday_is_skipped() -> None:
    christmas = _lj(2026, 12, 25, 10, 0)  # a Friday
    assert not in_calling_window(OFFICE, christmas, LJ)
    assert in_calling_window(OFFICE, _lj(2026, 12, 24, 10, 0), LJ)
    # Thursday evening -> Friday is a holiday, then the weekend -> Monday
    assert next_window_start(OFFICE, _lj(2026, 12, 24, 17, 30), LJ) == _lj(2026, 12, 28, 9, 0)


def test_holiday_is_a_local_date() -> None:
    # 23:30 UTC on the 24th is already the 25th in Ljubljana, and still the 24th in New York
    window = CallingWindow(days=list(Weekday), start=time(0), end=time(23, 59), holidays=[date(2026, 12, 25)])
    moment = _utc(2026, 12, 24, 23, 30)
    assert not in_calling_window(window, moment, LJ)
    assert in_calling_window(window, moment, "America/New_York")


def test_spring_forward_in_ljubljana() -> None:
    # 2026-03-29, last Sunday of March: 02:00 CET -> 03:00 CEST; 09:00 local moves from 08:00 to 07:00 UTC
    assert not in_calling_window(EVERY_DAY, _utc(2026, 3, 28, 7, 30), LJ)
    assert in_calling_window(EVERY_DAY, _utc(2026, 3, 28, 8, 0), LJ)
    assert in_calling_window(EVERY_DAY, _utc(2026, 3, 29, 7, 30), LJ)
    assert not in_calling_window(EVERY_DAY, _utc(2026, 3, 29, 15, 0), LJ)  # 17:00 CEST
    start = next_window_start(EVERY_DAY, _utc(2026, 3, 28, 20, 0), LJ)
    assert start == _utc(2026, 3, 29, 7, 0)
    assert start.utcoffset() is not None and start.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]


def test_start_inside_the_skipped_hour_moves_past_the_gap() -> None:
    window = CallingWindow(days=list(Weekday), start=time(2, 30), end=time(5))
    start = next_window_start(window, _utc(2026, 3, 28, 23, 0), LJ)  # midnight local
    assert start == _utc(2026, 3, 29, 1, 30)  # 03:30 CEST, right after the clocks jump
    assert start.astimezone(ZoneInfo(LJ)).time() == time(3, 30)
    assert in_calling_window(window, start, LJ)


def test_fall_back_in_ljubljana() -> None:
    # 2026-10-25, last Sunday of October: 03:00 CEST -> 02:00 CET; 09:00 local moves from 07:00 to 08:00 UTC
    assert in_calling_window(EVERY_DAY, _utc(2026, 10, 24, 7, 30), LJ)
    assert not in_calling_window(EVERY_DAY, _utc(2026, 10, 25, 7, 30), LJ)
    assert next_window_start(EVERY_DAY, _utc(2026, 10, 24, 20, 0), LJ) == _utc(2026, 10, 25, 8, 0)
    # a start in the repeated hour: the first 02:30 (CEST) is taken
    window = CallingWindow(days=list(Weekday), start=time(2, 30), end=time(5))
    first = next_window_start(window, _utc(2026, 10, 24, 22, 0), LJ)
    # (an aware time in the repeated hour never equals one of another zone: compare in UTC)
    assert first.astimezone(UTC) == _utc(2026, 10, 25, 0, 30)
    # both 02:30s are inside the window
    assert in_calling_window(window, _utc(2026, 10, 25, 1, 30), LJ)


def test_contact_time_zone_not_the_servers() -> None:
    moment = _utc(2026, 6, 1, 7, 30)  # a Monday: 09:30 in Ljubljana, 03:30 in New York
    assert in_calling_window(OFFICE, moment, LJ)
    assert not in_calling_window(OFFICE, moment, "America/New_York")
    new_york = next_window_start(OFFICE, moment, "America/New_York")
    assert new_york == _utc(2026, 6, 1, 13, 0)
    assert new_york.tzinfo == ZoneInfo("America/New_York")
    tokyo = next_window_start(OFFICE, moment, "Asia/Tokyo")  # 16:30 there: in
    assert tokyo == moment


def test_bad_inputs_to_window_functions() -> None:
    with pytest.raises(InputError, match="aware"):
        in_calling_window(OFFICE, datetime(2026, 6, 1, 10, 0), LJ)
    with pytest.raises(InputError, match="aware"):
        next_window_start(OFFICE, datetime(2026, 6, 1, 10, 0), LJ)
    with pytest.raises(InputError, match="time zone"):
        in_calling_window(OFFICE, _utc(2026, 6, 1, 10, 0), "Mars/Olympus")
