"""SDP parsing and RFC 3264 offer/answer against offers real user agents send (tests/data/rtp)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.rtp.errors import SdpError
from voicebot.rtp.sdp import (
    G722,
    PCMA,
    PCMU,
    Codec,
    Direction,
    MediaParams,
    SessionDescription,
    answer_offer,
    create_offer,
    parse_answer,
)

DATA = Path(__file__).parent.parent / "data" / "rtp"
FILES = sorted(DATA.glob("*.sdp"))


def load(name: str) -> str:
    return (DATA / name).read_text().replace("\r\n", "\n").replace("\n", "\r\n")


def answer(name: str, **kwargs: object) -> tuple[SessionDescription, MediaParams]:
    text, params = answer_offer(
        load(name),
        address="127.0.0.1",
        port=20000,
        session_id=42,
        version=1,
        **kwargs,  # type: ignore[arg-type]
    )
    return SessionDescription.parse(text), params


def test_data_present() -> None:
    assert len(FILES) >= 12


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_round_trip(path: Path) -> None:
    sd = SessionDescription.parse(load(path.name))
    assert SessionDescription.parse(str(sd)) == sd
    assert str(SessionDescription.parse(str(sd))) == str(sd)


# file -> (codec, payload type, telephone-event pt, our direction, on hold, remote address, port)
EXPECTED = {
    "sipp_uac_pcmu.sdp": ("PCMU", 0, None, Direction.SENDRECV, False, "127.0.0.1", 6000),
    "baresip.sdp": ("PCMU", 0, 101, Direction.SENDRECV, False, "127.0.0.1", 10130),
    "linphone.sdp": ("PCMU", 0, 100, Direction.SENDRECV, False, "127.0.0.1", 7078),
    "asterisk.sdp": ("PCMA", 8, 101, Direction.SENDRECV, False, "127.0.0.1", 10000),
    "cisco_cucm.sdp": ("PCMU", 0, 101, Direction.SENDRECV, False, "127.0.0.1", 24580),
    "polycom.sdp": ("PCMU", 0, 127, Direction.SENDRECV, False, "127.0.0.1", 2226),
    "ipv6.sdp": ("PCMA", 8, 101, Direction.SENDRECV, False, "::1", 5004),
    "hold_sendonly.sdp": ("PCMU", 0, 101, Direction.RECVONLY, True, "127.0.0.1", 10000),
    "hold_inactive.sdp": ("PCMU", 0, 101, Direction.INACTIVE, True, "127.0.0.1", 10130),
    "hold_rfc2543.sdp": ("PCMU", 0, None, Direction.SENDRECV, True, "0.0.0.0", 24580),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_answer_realistic_offers(name: str) -> None:
    codec, pt, dtmf, direction, hold, address, port = EXPECTED[name]
    offer = SessionDescription.parse(load(name))
    sd, params = answer(name)
    assert params == MediaParams(address, port, Codec(codec, pt), dtmf, 20, direction, hold)
    # RFC 3264: as many m= lines as the offer, the accepted one first in its own port
    assert len(sd.media) == len(offer.media)
    audio = sd.media[0]
    assert (audio.media, audio.port, audio.proto) == ("audio", 20000, "RTP/AVP")
    assert audio.formats == ((str(pt), str(dtmf)) if dtmf is not None else (str(pt),))
    assert sd.connection is not None and sd.connection.address == "127.0.0.1"
    assert sd.direction_for(audio) == direction
    assert audio.ptime == 20
    for other in sd.media[1:]:
        assert other.port == 0


def test_linphone_video_is_rejected_and_dtmf_fmtp_mirrored() -> None:
    sd, _ = answer("linphone.sdp")
    assert [(m.media, m.port) for m in sd.media] == [("audio", 20000), ("video", 0)]
    sd, _ = answer("baresip.sdp")
    assert sd.media[0].fmtp() == {101: "0-15"}
    assert sd.media[0].rtpmap()[101] == Codec("telephone-event", 101)


def test_our_codec_preference_does_not_override_the_offerers() -> None:
    _, params = answer("asterisk.sdp", codecs=(PCMU, PCMA))
    assert params.codec == PCMA  # Asterisk lists PCMA first
    _, params = answer("polycom.sdp", codecs=(PCMU, PCMA, G722))
    assert params.codec == G722


@pytest.mark.parametrize("name", ["g729_only.sdp", "srtp_only.sdp"])
def test_no_usable_codec_is_488(name: str) -> None:
    with pytest.raises(SdpError) as info:
        answer(name)
    assert info.value.status == 488


@pytest.mark.parametrize(
    "text",
    ["", "hello", "v=1\r\n", "v=0\r\no=x\r\n", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nm=audio x RTP/AVP 0\r\n"],
)
def test_unparseable_is_400(text: str) -> None:
    with pytest.raises(SdpError) as info:
        answer_offer(text, address="127.0.0.1", port=20000, session_id=1, version=1)
    assert info.value.status == 400


def test_audio_without_connection_is_400() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    with pytest.raises(SdpError) as info:
        answer_offer(text, address="127.0.0.1", port=20000, session_id=1, version=1)
    assert info.value.status == 400


def test_dynamic_payload_type_by_name_case_insensitive() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 112 113\r\na=rtpmap:112 pcma/8000\r\na=rtpmap:113 TELEPHONE-EVENT/8000\r\n"
    )
    _, params = answer_offer(text, address="127.0.0.1", port=20000, session_id=1, version=1)
    assert params.codec == Codec("PCMA", 112)
    assert params.telephone_event_pt == 113


def test_session_level_direction_applies() -> None:
    text = load("sipp_uac_pcmu.sdp") + "a=recvonly\r\n"  # media level: after the m= line
    _, params = answer_offer(text, address="127.0.0.1", port=20000, session_id=1, version=1)
    assert params.direction == Direction.SENDONLY and not params.on_hold


def test_offer_and_answer_between_us() -> None:
    offer = create_offer(address="127.0.0.1", port=30000, session_id=7, version=1)
    sd = SessionDescription.parse(offer)
    assert sd.media[0].formats == ("0", "8", "101")
    assert sd.origin.session_id == "7"
    answer_text, theirs = answer_offer(offer, address="127.0.0.1", port=30002, session_id=8, version=1)
    assert theirs == MediaParams("127.0.0.1", 30000, PCMU, 101)
    ours = parse_answer(answer_text, (PCMU, PCMA), 101)
    assert ours == MediaParams("127.0.0.1", 30002, PCMU, 101)


def test_hold_offer_and_answer() -> None:
    offer = create_offer(
        address="127.0.0.1", port=30000, session_id=7, version=2, direction=Direction.SENDONLY
    )
    answer_text, theirs = answer_offer(offer, address="127.0.0.1", port=30002, session_id=8, version=2)
    assert theirs.direction == Direction.RECVONLY and theirs.on_hold
    ours = parse_answer(answer_text, (PCMU, PCMA), 101)
    assert ours.direction == Direction.SENDONLY and not ours.on_hold


def test_parse_answer_without_common_codec_is_488() -> None:
    text = load("g729_only.sdp")
    with pytest.raises(SdpError) as info:
        parse_answer(text, (PCMU, PCMA), 101)
    assert info.value.status == 488


def test_parse_answer_ignores_dtmf_we_did_not_offer() -> None:
    params = parse_answer(load("asterisk.sdp"), (PCMA,), None)
    assert params.codec == PCMA and params.telephone_event_pt is None


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_sdp_error(text: str) -> None:
    with contextlib.suppress(SdpError):
        sd = SessionDescription.parse(text)
        assert SessionDescription.parse(str(sd)) == sd


line = st.sampled_from("vosictbmaukzrpe").flatmap(
    lambda key: st.text(st.characters(exclude_characters="\r\n"), max_size=30).map(lambda v: f"{key}={v}")
)


@settings(max_examples=400)
@given(st.lists(line, max_size=12), st.sampled_from(FILES))
def test_sdp_like_text_parses_or_raises_sdp_error(lines: list[str], path: Path) -> None:
    base = load(path.name).split("\r\n")
    text = "\r\n".join(base[:3] + lines + base[3:])
    with contextlib.suppress(SdpError):
        sd = SessionDescription.parse(text)
        assert SessionDescription.parse(str(sd)) == sd
    with contextlib.suppress(SdpError):
        answer_offer(text, address="127.0.0.1", port=20000, session_id=1, version=1)
