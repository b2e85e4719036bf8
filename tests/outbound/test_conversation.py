from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.errors import ConflictError
from voicebot.outbound.campaign_config import CampaignDefinition, load_campaign
from voicebot.outbound.conversation import ScriptedConversation, Step, parse_payment_date
from voicebot.outbound.schedule import Outcome

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
TODAY = date(2026, 11, 24)  # a Tuesday
APPOINTMENT = load_campaign(CAMPAIGNS / "appointment-confirmation.yaml")
PAYMENT = load_campaign(CAMPAIGNS / "payment-reminder.yaml")
SURVEY = load_campaign(CAMPAIGNS / "csat-survey.yaml")
VARIABLES = {
    "appointment_date": "Thursday 26 November",
    "appointment_time": "10:00",
    "location": "Main Street 1",
    "slot_1": "Tuesday 1 December at 10:00",
    "slot_2": "Thursday 3 December at 14:30",
    "invoice_number": "2026-117",
    "amount": "120 EUR",
    "due_date": "10 November",
    "product": "the app",
}


def talk(definition: CampaignDefinition, language: str = "en", **overrides: str) -> ScriptedConversation:
    conversation = ScriptedConversation(
        definition, name="Ana", variables={**VARIABLES, **overrides}, language=language, today=TODAY
    )
    conversation.opening()
    return conversation


# -- appointment confirmation ----------------------------------------------------------------


def test_appointment_opening_joins_greeting_purpose_and_question() -> None:
    conversation = ScriptedConversation(
        APPOINTMENT, name="Ana", variables=VARIABLES, language="en", today=TODAY
    )
    assert conversation.state() == "start"
    step = conversation.opening()
    assert step == Step(
        "Hello Ana, this is the automated assistant of our clinic. I am calling about your appointment on "
        "Thursday 26 November at 10:00 at Main Street 1. Will you come? You can confirm, move it to "
        "another time, or cancel it."
    )
    assert conversation.state() == "ask_confirm"
    with pytest.raises(ConflictError):
        conversation.opening()


@pytest.mark.parametrize(
    "said",
    [
        "Yes.",
        "uh, yeah sure",
        "Yes I'll be there",
        "well, OK, I will come",
        "I'm coming!",
        "Confirm",
        "YEAH.",
    ],
)
def test_appointment_confirmed(said: str) -> None:
    conversation = talk(APPOINTMENT)
    step = conversation.hear(said)
    assert step == Step("Thank you, your appointment is confirmed. Goodbye!", done=True)
    assert conversation.outcome is Outcome.CONFIRMED
    assert conversation.result == {"decision": "confirm"}
    assert conversation.state() == "done"


@pytest.mark.parametrize("said", ["da, pridem", "Ja.", "Seveda bom prišla.", "potrjujem"])
def test_appointment_confirmed_in_slovenian(said: str) -> None:
    conversation = talk(APPOINTMENT, "sl")
    assert conversation.hear(said) == Step("Hvala, vaš termin je potrjen. Nasvidenje!", done=True)
    assert conversation.outcome is Outcome.CONFIRMED


@pytest.mark.parametrize(
    "said", ["No, I won't come.", "Please cancel it", "I'm not coming", "I will not come"]
)
def test_appointment_cancelled_and_negation_is_no_confirmation(said: str) -> None:
    conversation = talk(APPOINTMENT)
    step = conversation.hear(said)
    assert step.text.startswith("Your appointment is cancelled.") and step.done
    assert conversation.outcome is Outcome.CANCELLED
    assert conversation.result == {"decision": "cancel"}


@pytest.mark.parametrize("said", ["ne bom prišel", "Prosim, odpovejte termin.", "ne pridem"])
def test_appointment_cancelled_in_slovenian(said: str) -> None:
    conversation = talk(APPOINTMENT, "sl")
    conversation.hear(said)
    assert conversation.outcome is Outcome.CANCELLED


def test_dont_cancel_is_not_a_cancellation() -> None:
    conversation = talk(APPOINTMENT)
    conversation.hear("no no, don't cancel, I'll come")
    assert conversation.outcome is Outcome.CONFIRMED


@pytest.mark.parametrize(
    ("said", "choice", "slot"),
    [
        ("Can we move it?", "the first one", "Tuesday 1 December at 10:00"),
        ("I can't come", "Tuesday at ten", "Tuesday 1 December at 10:00"),
        ("I can't make it, another time please", "uh, the second", "Thursday 3 December at 14:30"),
        ("different day please", "the one on Thursday", "Thursday 3 December at 14:30"),
        ("I'd like to reschedule", "two", "Thursday 3 December at 14:30"),
        ("reschedule", "One.", "Tuesday 1 December at 10:00"),
        ("move it", "not the first one, the second one", "Thursday 3 December at 14:30"),
        ("move it", "at half past two on the 3rd", "Thursday 3 December at 14:30"),
    ],
)
def test_appointment_rescheduled(said: str, choice: str, slot: str) -> None:
    conversation = talk(APPOINTMENT)
    assert conversation.hear(said) == Step(
        "I can offer Tuesday 1 December at 10:00 or Thursday 3 December at 14:30. Which one suits you?"
    )
    assert conversation.state() == "choose_slot"
    step = conversation.hear(choice)
    assert step == Step(f"Done: your appointment is now on {slot}. Goodbye!", done=True)
    assert conversation.outcome is Outcome.RESCHEDULED
    assert conversation.result == {"decision": "reschedule", "new_slot": slot}


def test_appointment_rescheduled_in_slovenian() -> None:
    conversation = talk(APPOINTMENT, "sl", slot_1="torek, 1. 12. ob 10:00", slot_2="četrtek, 3. 12. ob 14:30")
    step = conversation.hear("Ne morem priti, bi lahko prestavili na drug termin?")
    assert step.text.startswith("Ponudim vam lahko torek, 1. 12. ob 10:00 ali")
    conversation.hear("v četrtek")
    assert conversation.outcome is Outcome.RESCHEDULED
    assert conversation.result["new_slot"] == "četrtek, 3. 12. ob 14:30"


def test_plain_no_offers_other_slots_rather_than_cancelling() -> None:
    conversation = talk(APPOINTMENT)
    conversation.hear("no")
    assert conversation.state() == "choose_slot"
    assert conversation.outcome is None


def test_no_slot_fits_goes_to_a_person() -> None:
    conversation = talk(APPOINTMENT)
    conversation.hear("move it please")
    step = conversation.hear("neither of them works for me")
    # the appointment script has no handoff prompt: a colleague calls back and this call ends
    assert step == Step("I will ask a colleague to call you back. Goodbye!", done=True)
    assert conversation.outcome is Outcome.HANDOFF
    assert conversation.result == {"decision": "reschedule", "handoff_reason": "no_slot_fits"}


def test_cancel_while_choosing_a_slot() -> None:
    conversation = talk(APPOINTMENT)
    conversation.hear("move it")
    conversation.hear("actually just cancel it")
    assert conversation.outcome is Outcome.CANCELLED


@pytest.mark.parametrize(
    ("digits", "outcome"),
    [(["1"], Outcome.CONFIRMED), (["3"], Outcome.CANCELLED), (["2", "2"], Outcome.RESCHEDULED)],
)
def test_appointment_dtmf(digits: list[str], outcome: Outcome) -> None:
    conversation = talk(APPOINTMENT)
    for digit in digits:
        conversation.hear(digit, source="dtmf")
    assert conversation.outcome is outcome
    if outcome is Outcome.RESCHEDULED:
        assert conversation.result["new_slot"] == "Thursday 3 December at 14:30"


def test_missing_slot_variable_goes_to_a_person() -> None:
    conversation = talk(APPOINTMENT, slot_2="")
    conversation.hear("2", source="dtmf")
    conversation.hear("2", source="dtmf")
    assert conversation.outcome is Outcome.HANDOFF


# -- payment reminder ------------------------------------------------------------------------


def test_payment_opening() -> None:
    conversation = ScriptedConversation(PAYMENT, name="Ana", variables=VARIABLES, language="en", today=TODAY)
    assert conversation.opening().text == (
        "Hello Ana, this is the automated assistant of the billing department. Invoice 2026-117 for "
        "120 EUR was due on 10 November and is still open. When can you pay it? I can also e-mail you "
        "the invoice, or put you through to a colleague."
    )


@pytest.mark.parametrize(
    ("said", "promised", "spoken"),
    [
        ("well, next Friday", "2026-11-27", "Friday 27 November 2026"),
        ("I can pay on the 5th of December", "2026-12-05", "Saturday 5 December 2026"),
        ("tomorrow", "2026-11-25", "Wednesday 25 November 2026"),
        ("uh, in two weeks", "2026-12-08", "Tuesday 8 December 2026"),
        ("today", "2026-11-24", "Tuesday 24 November 2026"),
    ],
)
def test_payment_promised(said: str, promised: str, spoken: str) -> None:
    conversation = talk(PAYMENT)
    step = conversation.hear(said)
    assert step == Step(f"Thank you, I have noted that you will pay by {spoken}. Goodbye!", done=True)
    assert conversation.outcome is Outcome.PROMISED_TO_PAY
    assert conversation.result == {"promised_date": promised}


@pytest.mark.parametrize(
    ("said", "promised", "spoken"),
    [
        ("v petek", "2026-11-27", "petek, 27. 11. 2026"),
        ("Plačal bom do 5. decembra.", "2026-12-05", "sobota, 5. 12. 2026"),
        ("jutri", "2026-11-25", "sreda, 25. 11. 2026"),
    ],
)
def test_payment_promised_in_slovenian(said: str, promised: str, spoken: str) -> None:
    conversation = talk(PAYMENT, "sl")
    step = conversation.hear(said)
    assert step.text == f"Hvala, zabeležil sem, da boste plačali do {spoken}. Nasvidenje!"
    assert conversation.result == {"promised_date": promised}


@pytest.mark.parametrize("said", ["last Friday", "yesterday", "on the 15th of March", "in 5 months"])
def test_payment_date_out_of_range_is_asked_again_once(said: str) -> None:
    conversation = talk(PAYMENT)
    step = conversation.hear(said)
    assert step == Step("I can note a payment date from today up to 90 days ahead. When can you pay?")
    assert conversation.outcome is None
    conversation.hear("next Monday")
    assert conversation.result == {"promised_date": "2026-11-30"}


def test_second_unusable_date_goes_to_a_person() -> None:
    conversation = talk(PAYMENT)
    conversation.hear("yesterday")
    step = conversation.hear("in March")
    assert step == Step("I am putting you through to a colleague now.", handoff=True)
    assert conversation.outcome is Outcome.HANDOFF
    assert conversation.result == {"handoff_reason": "invalid_date"}


def test_parse_payment_date_edges() -> None:
    assert parse_payment_date("in 90 days", TODAY) == date(2027, 2, 22)
    assert parse_payment_date("I will pay", TODAY) is None
    assert parse_payment_date("", TODAY) is None
    assert parse_payment_date("December 1st", TODAY) == date(2026, 12, 1)
    assert parse_payment_date("the 1st", TODAY) == date(2026, 12, 1)  # the next 1st, not the past one


def test_day_90_is_accepted_and_day_91_is_not() -> None:
    accepted = talk(PAYMENT)
    accepted.hear("on 22 February 2027")
    assert accepted.outcome is Outcome.PROMISED_TO_PAY
    refused = talk(PAYMENT)
    refused.hear("on 23 February 2027")
    assert refused.outcome is None


@pytest.mark.parametrize(
    "said", ["Send me the invoice.", "could you email it to me", "uh, the invoice please"]
)
def test_invoice_requested(said: str) -> None:
    conversation = talk(PAYMENT)
    step = conversation.hear(said)
    assert step == Step("I have sent invoice 2026-117 to your e-mail address. Goodbye!", done=True)
    assert conversation.outcome is Outcome.INVOICE_REQUESTED
    assert conversation.result == {"invoice_requested": True}


def test_invoice_requested_in_slovenian() -> None:
    conversation = talk(PAYMENT, "sl")
    conversation.hear("Pošljite mi račun po e-pošti, prosim.")
    assert conversation.outcome is Outcome.INVOICE_REQUESTED


def test_promise_and_invoice_together_records_both() -> None:
    conversation = talk(PAYMENT)
    conversation.hear("I'll pay on Friday, and please email me the invoice")
    assert conversation.outcome is Outcome.PROMISED_TO_PAY
    assert conversation.result == {"promised_date": "2026-11-27", "invoice_requested": True}


@pytest.mark.parametrize("said", ["can I talk to a person?", "agent", "Operator please", "a colleague"])
def test_payment_handoff_transfers_with_the_script_prompt(said: str) -> None:
    conversation = talk(PAYMENT)
    assert conversation.hear(said) == Step("I am putting you through to a colleague now.", handoff=True)
    assert conversation.outcome is Outcome.HANDOFF
    assert conversation.result == {"handoff_reason": "asked_for_person"}
    assert conversation.hear("hello?") == Step("", done=True)


@pytest.mark.parametrize(
    "said", ["Želim govoriti s človekom.", "sodelavec, prosim", "povežite me s sodelavcem"]
)
def test_payment_handoff_in_slovenian(said: str) -> None:
    conversation = talk(PAYMENT, "sl")
    assert conversation.hear(said) == Step("Zdaj vas povezujem s sodelavcem.", handoff=True)


def test_already_paid_goes_to_a_person() -> None:
    conversation = talk(PAYMENT)
    conversation.hear("I already paid it on Monday")
    assert conversation.outcome is Outcome.HANDOFF
    assert conversation.result == {"handoff_reason": "already_paid"}


def test_handoff_without_a_prompt_promises_a_call_back() -> None:
    conversation = talk(APPOINTMENT, "sl")
    step = conversation.hear("Lahko govorim s sodelavcem?")
    assert step == Step("Prosil bom sodelavca, da vas pokliče nazaj. Nasvidenje!", done=True)
    assert conversation.outcome is Outcome.HANDOFF


def test_dtmf_zero_asks_for_a_person() -> None:
    conversation = talk(PAYMENT)
    assert conversation.hear("0", source="dtmf").handoff
    assert conversation.outcome is Outcome.HANDOFF


# -- survey ------------------------------------------------------------------------------------


def test_survey_opening_asks_the_first_question() -> None:
    conversation = ScriptedConversation(SURVEY, name="Ana", variables=VARIABLES, language="en", today=TODAY)
    assert conversation.opening().text == (
        "Hello Ana, we would like your opinion on the app. It takes one minute. From 1 to 5, how "
        "satisfied are you with the app? You can also press a key."
    )


def test_survey_completed() -> None:
    conversation = talk(SURVEY)
    assert conversation.hear("I'd give it a four out of five").text == "Would you recommend us to a friend?"
    assert conversation.hear("Yes, I would.").text == "Is there anything we could do better?"
    step = conversation.hear("  Faster delivery, please. ")
    assert step == Step("Thank you for your answers. Goodbye!", done=True)
    assert conversation.outcome is Outcome.SURVEY_COMPLETED
    assert conversation.result == {
        "answers": {"satisfaction": 4, "recommend": True, "comment": "Faster delivery, please."}
    }


def test_survey_completed_in_slovenian() -> None:
    conversation = talk(SURVEY, "sl")
    conversation.hear("Štiri.")
    conversation.hear("Ne bi.")
    step = conversation.hear("Hitrejšo dostavo.")
    assert step == Step("Hvala za vaše odgovore. Nasvidenje!", done=True)
    assert conversation.result == {
        "answers": {"satisfaction": 4, "recommend": False, "comment": "Hitrejšo dostavo."}
    }


@pytest.mark.parametrize(
    ("said", "rating"),
    [
        ("5", 5),
        ("five", 5),
        ("uh, three I guess", 3),
        ("a 2 out of 5", 2),
        ("pet", 5),
        ("dve", 2),
        ("not five, four", 4),
    ],
)
def test_survey_ratings(said: str, rating: int) -> None:
    conversation = talk(SURVEY)
    conversation.hear(said)
    assert conversation.state() == "survey_question"
    conversation.hear("no")
    conversation.hear("no")
    assert conversation.result["answers"]["satisfaction"] == rating


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("no, I would not", False),
        ("not really", False),
        ("yeah sure", True),
        ("ja", True),
        ("seveda", True),
        ("ne", False),
    ],
)
def test_survey_yes_no(said: str, answer: bool) -> None:
    conversation = talk(SURVEY)
    conversation.hear("4")
    conversation.hear(said)
    conversation.hear("nothing")
    assert conversation.result["answers"]["recommend"] is answer


def test_unclear_rating_is_asked_again_with_a_hint_then_skipped() -> None:
    conversation = talk(SURVEY)
    step = conversation.hear("ten")
    assert step.text.startswith("Please answer with a number from 1 to 5. From 1 to 5, how satisfied")
    assert conversation.hear("pretty good I suppose").text == "Would you recommend us to a friend?"
    conversation.hear("maybe")  # unclear yes/no: hint
    conversation.hear("I don't know")  # still unclear: skipped
    conversation.hear("no")
    assert conversation.result == {"answers": {"satisfaction": None, "recommend": None, "comment": "no"}}


def test_survey_dtmf() -> None:
    conversation = talk(SURVEY)
    conversation.hear("4", source="dtmf")
    conversation.hear("2", source="dtmf")
    conversation.hear("#", source="dtmf")  # a key at the free-text question skips it
    assert conversation.result == {"answers": {"satisfaction": 4, "recommend": False, "comment": None}}


def test_survey_dtmf_out_of_range_hints_first() -> None:
    conversation = talk(SURVEY)
    assert conversation.hear("9", source="dtmf").text.startswith("Please answer with a number")
    conversation.hear("3", source="dtmf")
    assert conversation.state() == "survey_question"


@pytest.mark.parametrize(
    "said", ["not now", "sorry, no time", "I'm not interested", "nimam časa", "ne zanima me"]
)
def test_survey_declined_before_the_first_answer(said: str) -> None:
    conversation = talk(SURVEY)
    step = conversation.hear(said)
    assert step.done and conversation.outcome is Outcome.DECLINED
    assert not conversation.dnc_requested


def test_decline_words_after_the_first_answer_are_answers() -> None:
    conversation = talk(SURVEY)
    conversation.hear("4")
    conversation.hear("yes")
    conversation.hear("Not now, but your support was slow")
    assert conversation.outcome is Outcome.SURVEY_COMPLETED


def test_free_text_mentioning_an_agent_is_an_answer() -> None:
    conversation = talk(SURVEY)
    conversation.hear("4")
    conversation.hear("yes")
    conversation.hear("The agent on the phone was rude")
    assert conversation.result["answers"]["comment"] == "The agent on the phone was rude"


# -- every kind ---------------------------------------------------------------------------------


@pytest.mark.parametrize("definition", [APPOINTMENT, PAYMENT, SURVEY])
@pytest.mark.parametrize(
    "said", ["Stop calling me!", "don't call again", "Please remove my number.", "Do not call me anymore"]
)
def test_do_not_call(definition: CampaignDefinition, said: str) -> None:
    conversation = talk(definition)
    step = conversation.hear(said)
    assert step == Step("I am sorry for the disturbance. We will not call you again. Goodbye!", done=True)
    assert conversation.dnc_requested
    assert conversation.outcome is Outcome.DECLINED


def test_do_not_call_in_slovenian() -> None:
    conversation = talk(SURVEY, "sl")
    assert conversation.hear("Ne kličite me več.").text.startswith("Oprostite za motnjo.")
    assert conversation.dnc_requested


@pytest.mark.parametrize("definition", [APPOINTMENT, PAYMENT])
def test_two_misunderstandings_in_a_row_end_with_a_person_following_up(
    definition: CampaignDefinition,
) -> None:
    conversation = talk(definition)
    step = conversation.hear("banana")
    assert step.text.startswith("Sorry, I did not catch that. ")
    assert not step.done and conversation.outcome is None
    step = conversation.hear("the weather is nice")
    assert step.done and not step.handoff
    assert step.text.startswith("I am sorry, I am having trouble understanding you.")
    assert conversation.outcome is Outcome.HANDOFF
    assert conversation.result["handoff_reason"] == "not_understood"


def test_misunderstanding_counter_resets_after_an_understood_answer() -> None:
    conversation = talk(APPOINTMENT)
    conversation.hear("banana")
    conversation.hear("move it")
    assert conversation.hear("apple").text.startswith("Sorry, I did not catch that. I can offer")
    assert conversation.outcome is None


def test_misunderstood_in_slovenian() -> None:
    conversation = talk(APPOINTMENT, "sl")
    assert conversation.hear("banana").text.startswith("Oprostite, tega nisem razumel. Boste prišli?")


def test_silence_reasks_once_then_ends_without_an_outcome() -> None:
    conversation = talk(PAYMENT)
    step = conversation.silence()
    assert step.text.startswith("Are you still there? When can you pay it?")
    assert not step.done
    step = conversation.silence()
    assert step.done and conversation.outcome is None
    assert conversation.state() == "done"
    assert conversation.silence() == Step("", done=True)


def test_speech_between_silences_resets_the_count() -> None:
    conversation = talk(SURVEY)
    conversation.silence()
    conversation.hear("5")
    assert not conversation.silence().done


def test_empty_recognition_counts_as_silence() -> None:
    conversation = talk(APPOINTMENT)
    assert conversation.hear("   ").text.startswith("Are you still there?")


def test_after_done_nothing_changes() -> None:
    conversation = talk(APPOINTMENT)
    conversation.hear("yes")
    assert conversation.hear("no, cancel it") == Step("", done=True)
    assert conversation.hear("1", source="dtmf") == Step("", done=True)
    assert conversation.outcome is Outcome.CONFIRMED


def test_speech_before_the_opening_gets_the_opening() -> None:
    conversation = ScriptedConversation(SURVEY, name="Ana", variables=VARIABLES, language="en", today=TODAY)
    assert conversation.hear("Hello?").text.startswith("Hello Ana, we would like your opinion")
    assert conversation.state() == "survey_question"


def test_language_choice_and_fallback() -> None:
    def language(wanted: str | None) -> str:
        return ScriptedConversation(SURVEY, name=None, variables={}, language=wanted, today=TODAY).language

    assert language("sl") == "sl"
    assert language("sl-SI") == "sl"
    assert language("de") == "en"
    assert language(None) == "en"


def test_missing_variables_leave_readable_text() -> None:
    conversation = ScriptedConversation(APPOINTMENT, name=None, variables={}, language="en", today=TODAY)
    text = conversation.opening().text
    assert "{" not in text
    assert text.startswith("Hello, this is the automated assistant")
    assert "  " not in text


def test_voicemail_message() -> None:
    en = ScriptedConversation(APPOINTMENT, name="Ana", variables=VARIABLES, language="en", today=TODAY)
    assert en.voicemail_message() == (
        "Hello Ana, we called about your appointment on Thursday 26 November. Please call us back on "
        "+386 1 555 01 00."
    )
    sl = ScriptedConversation(APPOINTMENT, name="Ana", variables=VARIABLES, language="sl", today=TODAY)
    assert (sl.voicemail_message() or "").startswith("Pozdravljeni, Ana, klicali smo glede termina")
    survey = ScriptedConversation(SURVEY, name="Ana", variables=VARIABLES, language="en", today=TODAY)
    assert survey.voicemail_message() is None  # hang_up


_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.sampled_from(
            [
                "yes",
                "no",
                "not",
                "can't",
                "first",
                "one",
                "5",
                "Friday",
                "ne",
                "da",
                "pet",
                "agent",
                "move",
                "cancel",
                "ob",
                "10.30",
                "5.",
                "decembra",
                "don't",
                "call",
                "again",
                ",",
                "?",
                "č",
                "'",
                "",
                "  ",
            ]
        ),
        max_size=12,
    ).map(" ".join),
)


@settings(max_examples=150, deadline=None)
@given(
    definition=st.sampled_from([APPOINTMENT, PAYMENT, SURVEY]),
    language=st.sampled_from(["en", "sl"]),
    turns=st.lists(st.tuples(_TEXT, st.sampled_from(["speech", "dtmf", "silence"])), max_size=6),
)
def test_arbitrary_text_never_raises(
    definition: CampaignDefinition, language: str, turns: list[tuple[str, str]]
) -> None:
    conversation = talk(definition, language)
    for text, source in turns:
        if source == "silence":
            step = conversation.silence()
        else:
            step = conversation.hear(text, source="dtmf" if source == "dtmf" else "speech")
        assert isinstance(step, Step)
        if step.done or step.handoff:
            assert conversation.state() == "done"
        if conversation.state() == "done":
            assert conversation.hear(text) == Step("", done=True)
