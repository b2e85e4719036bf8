import contextlib
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.errors import InputError
from voicebot.outbound.contacts import TimezoneSource, import_contacts

MIXED = (
    "Phone,Name,Timezone,Amount,Due_Date\n"  # 1
    "+386 1 555 0100,Ana Novak,,12.50,2026-12-01\n"  # 2 good, zone from the number
    "041 123 456,Bojan,Europe/Ljubljana,3.00,2026-12-02\n"  # 3 good, national number
    "not-a-number,Cene,,1,2026-12-03\n"  # 4 bad phone
    "+38615550100,Dup,,2,2026-12-04\n"  # 5 duplicate of line 2
    "\n"  # 6 empty line
    "+1 212 555 0123,Eva,Mars/Olympus,5,2026-12-05\n"  # 7 bad time zone
    '"+44 20 7946 0958","Smith,\nFrank",,7,2026-12-06\n'  # 8-9 good, a quoted name over two lines
    "+1 201 555 0123,,America/Chicago,9,2026-12-07\n"  # 10 good, given zone wins
    "+1 800 555 0199,Toll Free,,1,2026-12-08\n"  # 11 good, several zones: the first, noted
    "+800 1234 5678,Global,,1,2026-12-09\n"  # 12 good, no zone: the default
    "+4915123456789,Too,Many,Cells,Here,Extra\n"  # 13 too many cells
    ",Nobody,,1,2026-12-10\n"  # 14 no phone
    "+491 2\n"  # 15 too short
)


def test_mixed_rows() -> None:
    result = import_contacts(MIXED, default_timezone="Europe/Ljubljana")
    assert [c.line for c in result.contacts] == [2, 3, 8, 10, 11, 12]
    assert [c.phone for c in result.contacts] == [
        "+38615550100",
        "+38641123456",
        "+442079460958",
        "+12015550123",
        "+18005550199",
        "+80012345678",
    ]
    assert [(e.line, e.message.split(":")[0]) for e in result.errors] == [
        (4, "not a phone number"),
        (5, "duplicate of line 2"),
        (7, "unknown time zone"),
        (13, "6 fields, the header has 5"),
        (14, "no phone number"),
        (15, "not a valid phone number"),
    ]
    ana, bojan, smith, chicago, toll_free, global_ = result.contacts
    assert (ana.name, ana.timezone, ana.timezone_source) == (
        "Ana Novak",
        "Europe/Ljubljana",
        TimezoneSource.NUMBER,
    )
    assert dict(ana.variables) == {"amount": "12.50", "due_date": "2026-12-01"}
    assert bojan.timezone_source is TimezoneSource.GIVEN
    assert smith.name == "Smith,\nFrank" and smith.timezone == "Europe/London"
    assert chicago.name is None and chicago.timezone == "America/Chicago"
    assert toll_free.timezone_source is TimezoneSource.NUMBER_AMBIGUOUS
    assert toll_free.timezone == "America/Adak"
    assert [n.line for n in result.notes] == [11] and "several time zones" in result.notes[0].message
    assert (global_.timezone, global_.timezone_source) == ("Europe/Ljubljana", TimezoneSource.DEFAULT)


def test_contacts_are_frozen() -> None:
    contact = import_contacts("phone\n+38615550100\n").contacts[0]
    with pytest.raises(AttributeError):
        contact.phone = "+1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        contact.variables["x"] = "y"  # type: ignore[index]


def test_default_region_reads_national_numbers() -> None:
    assert import_contacts("phone\n020 7946 0958\n", default_region="GB").contacts[0].phone == "+442079460958"
    assert import_contacts("phone\n020 7946 0958\n").errors[0].line == 2  # not a Slovenian number


def test_bytes_with_bom_and_crlf() -> None:
    result = import_contacts("\ufeffphone,name\r\n+38615550100,Ana\r\n\r\n041 123 456,B\r\n".encode())
    assert [(c.line, c.name) for c in result.contacts] == [(2, "Ana"), (4, "B")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "empty"),
        ("\n \n,,\n", "empty"),
        ("name,number\nAna,+38615550100\n", "no 'phone' column"),
        ("phone,Phone\n+38615550100,1\n", "twice"),
        (b"phone\n\xff\xfe\n", "not UTF-8"),
        ("phone\n+386\x0015550100\n", "NUL"),
    ],
)
def test_unusable_files_raise_input_error(data: str | bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        import_contacts(data)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="region"):
        import_contacts("phone\n", default_region="XX")
    with pytest.raises(InputError, match="time zone"):
        import_contacts("phone\n", default_timezone="Mars/Olympus")


_cells = st.sampled_from(
    ["+38615550100", "041 123 456", "+1 800 555 0199", "Europe/Ljubljana", "Nowhere/X", "", '"', "\n", ","]
)


_texts = st.one_of(
    st.text(max_size=300),
    st.lists(_cells, max_size=40).map(lambda cells: "phone,timezone,x\n" + "".join(cells)),
)


@settings(max_examples=300, deadline=None)
@given(_texts)
def test_arbitrary_text_only_input_error(text: str) -> None:
    try:
        result = import_contacts(text)
    except InputError:
        return
    lines = text.count("\n") + text.count("\r") + 1
    assert all(1 < c.line <= lines for c in result.contacts)
    assert all(1 <= e.line <= lines for e in result.errors)
    assert len({c.phone for c in result.contacts}) == len(result.contacts)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_input_error(data: bytes) -> None:
    with contextlib.suppress(InputError):
        import_contacts(data)


def test_consent_and_first_call_time_columns() -> None:
    text = (
        "phone,name,consent,call_at\n"
        "+38640111001,Ana,yes,2026-11-25 10:00\n"
        "+38640111002,Bor,No,2026-11-25T09:00:00+00:00\n"
        "+38640111003,Cene,maybe,\n"
        "+38640111004,Dan,,tomorrow\n"
        "+38640111005,Eva,,\n"
    )
    result = import_contacts(text, default_timezone="Europe/Ljubljana")
    ana, bor, eva = result.contacts
    assert ana.consent is True and ana.call_at is not None
    assert ana.call_at.isoformat() == "2026-11-25T10:00:00+01:00"  # the contact's own zone
    assert bor.consent is False and bor.call_at is not None and bor.call_at.utcoffset() == timedelta(0)
    assert eva.consent is None and eva.call_at is None
    assert "consent" not in ana.variables and "call_at" not in ana.variables
    assert [(e.line, e.message.split(":")[0]) for e in result.errors] == [
        (4, "consent must be yes or no, not 'maybe'"),
        (5, "call_at is not an ISO date-time"),
    ]
