"""The bot's own sentences, per language and formality; a tenant's `messages` override any of them.

Templates use str.format fields. Slovenian has formal ("vi") and informal ("ti") forms; English has
one form for most keys. Lookup falls back: (lang, formality) -> (lang, formal) -> English.
"""

from __future__ import annotations

from typing import Any

from voicebot.config import Formality, Tenant

# key -> language -> text; a language may map to {"formal": ..., "informal": ...}
BUILTIN: dict[str, dict[str, Any]] = {
    "empty": {
        "en": "I didn't catch a question there. How can I help?",
        "sl": {
            "formal": "Vprašanja nisem zaznal. Kako vam lahko pomagam?",
            "informal": "Vprašanja nisem zaznal. Kako ti lahko pomagam?",
        },
    },
    "ask_more": {
        "en": "I'm not sure I understood. Could you tell me a bit more, for example your order number "
        "or what you'd like to do?",
        "sl": {
            "formal": "Nisem prepričan, da sem razumel. Mi lahko poveste nekoliko več, na primer številko "
            "naročila ali kaj želite urediti?",
            "informal": "Nisem prepričan, da sem razumel. Mi lahko poveš nekoliko več, na primer številko "
            "naročila ali kaj želiš urediti?",
        },
    },
    "rephrase": {
        "en": "Sorry, I didn't quite get that. Could you say it in other words?",
        "sl": {
            "formal": "Oprostite, tega nisem povsem razumel. Bi lahko povedali z drugimi besedami?",
            "informal": "Oprosti, tega nisem povsem razumel. Bi lahko povedal z drugimi besedami?",
        },
    },
    "handoff": {
        "en": "I'm passing you to a colleague now, together with everything you've told me, so you won't "
        "need to repeat yourself.",
        "sl": {
            "formal": "Povezujem vas s sodelavcem in mu predajam vse, kar ste mi povedali, da vam ne bo "
            "treba ponavljati.",
            "informal": "Povezujem te s sodelavcem in mu predajam vse, kar si mi povedal, da ti ne bo "
            "treba ponavljati.",
        },
    },
    "handoff_sensitive": {
        "en": "I understand, and this deserves a person's attention. I'm passing you to a colleague now, "
        "with the details you've given me.",
        "sl": {
            "formal": "Razumem, za to naj poskrbi sodelavec. Povezujem vas z njim in mu predajam "
            "podatke, ki ste mi jih dali.",
            "informal": "Razumem, za to naj poskrbi sodelavec. Povezujem te z njim in mu predajam "
            "podatke, ki si mi jih dal.",
        },
    },
    "identify": {
        "en": "I can help with that. To protect your data, please first tell me the phone number or "
        "e-mail address on your account.",
        "sl": {
            "formal": "Pri tem vam lahko pomagam. Za zaščito vaših podatkov mi najprej povejte telefonsko "
            "številko ali e-naslov, ki ste ju navedli ob nakupu.",
            "informal": "Pri tem ti lahko pomagam. Za zaščito tvojih podatkov mi najprej povej telefonsko "
            "številko ali e-naslov, ki si ju navedel ob nakupu.",
        },
    },
    "verify": {
        "en": "I can help with that. For your security, please confirm your postcode or your date of birth.",
        "sl": {
            "formal": "Pri tem vam lahko pomagam. Zaradi varnosti mi prosim potrdite poštno številko "
            "ali datum rojstva.",
            "informal": "Pri tem ti lahko pomagam. Zaradi varnosti mi prosim potrdi poštno številko "
            "ali datum rojstva.",
        },
    },
    "verify_failed": {
        "en": "That doesn't match what we have on file. Please try your postcode or date of birth again.",
        "sl": {
            "formal": "To se ne ujema s podatki, ki jih imamo. Prosim, ponovno navedite poštno številko "
            "ali datum rojstva.",
            "informal": "To se ne ujema s podatki, ki jih imamo. Prosim, ponovno navedi poštno številko "
            "ali datum rojstva.",
        },
    },
    "not_found_customer": {
        "en": "I couldn't find an account with those details. Could you check the phone number or e-mail "
        "address?",
        "sl": {
            "formal": "S temi podatki nisem našel računa. Prosim, preverite telefonsko številko ali "
            "e-naslov.",
            "informal": "S temi podatki nisem našel računa. Prosim, preveri telefonsko številko ali "
            "e-naslov.",
        },
    },
    "ask_order_id": {
        "en": "Which order is it about? Please give me the order number, for example A1001.",
        "sl": {
            "formal": "Za katero naročilo gre? Prosim, navedite številko naročila, na primer A1001.",
            "informal": "Za katero naročilo gre? Prosim, navedi številko naročila, na primer A1001.",
        },
    },
    "order_not_found": {
        "en": "I couldn't find order {order_id} on your account. Could you check the number?",
        "sl": {
            "formal": "Naročila {order_id} na vašem računu ne najdem. Prosim, preverite številko.",
            "informal": "Naročila {order_id} na tvojem računu ne najdem. Prosim, preveri številko.",
        },
    },
    "order_status": {
        "en": "Your order {order_id} is {status}. It is being delivered to {address}.",
        "sl": {
            "formal": "Vaše naročilo {order_id} je {status}. Dostava bo na naslov {address}.",
            "informal": "Tvoje naročilo {order_id} je {status}. Dostava bo na naslov {address}.",
        },
    },
    "ask_address": {
        "en": "What is the new delivery address for order {order_id}?",
        "sl": {
            "formal": "Kateri je novi naslov za dostavo naročila {order_id}?",
            "informal": "Kateri je novi naslov za dostavo naročila {order_id}?",
        },
    },
    "address_changed": {
        "en": "Done: order {order_id} will now be delivered to {address}.",
        "sl": {
            "formal": "Urejeno: naročilo {order_id} bo dostavljeno na naslov {address}.",
            "informal": "Urejeno: naročilo {order_id} bo dostavljeno na naslov {address}.",
        },
    },
    "address_locked": {
        "en": "Order {order_id} is already {status}, so its delivery address can no longer be changed "
        "here. If you'd like, I can pass you to a colleague who can contact the carrier.",
        "sl": {
            "formal": "Naročilo {order_id} je že {status}, zato naslova dostave tu ni več mogoče "
            "spremeniti. Če želite, vas povežem s sodelavcem, ki se lahko obrne na dostavno "
            "službo.",
            "informal": "Naročilo {order_id} je že {status}, zato naslova dostave tu ni več mogoče "
            "spremeniti. Če želiš, te povežem s sodelavcem, ki se lahko obrne na dostavno "
            "službo.",
        },
    },
    "ask_datetime": {
        "en": "Which day and time would suit you? We have appointments on working days from {open}:00 to "
        "{close}:00.",
        "sl": {
            "formal": "Kateri dan in ura vam ustrezata? Termini so ob delavnikih od {open}. do {close}. ure.",
            "informal": "Kateri dan in ura ti ustrezata? Termini so ob delavnikih od {open}. do {close}. "
            "ure.",
        },
    },
    "slot_unavailable": {
        "en": "Sorry, {when} is outside our appointment hours (working days, {open}:00 to {close}:00). "
        "Which other time would suit you?",
        "sl": {
            "formal": "Žal {when} ni v času terminov (delavniki od {open}. do {close}. ure). Kateri drug "
            "čas vam ustreza?",
            "informal": "Žal {when} ni v času terminov (delavniki od {open}. do {close}. ure). Kateri drug "
            "čas ti ustreza?",
        },
    },
    "booked": {
        "en": "Your appointment is booked for {when}.",
        "sl": {
            "formal": "Vaš termin je rezerviran za {when}.",
            "informal": "Tvoj termin je rezerviran za {when}.",
        },
    },
    "no_appointment": {
        "en": "I don't see an upcoming appointment on your account.",
        "sl": {
            "formal": "Na vašem računu ne vidim prihajajočega termina.",
            "informal": "Na tvojem računu ne vidim prihajajočega termina.",
        },
    },
    "confirmed": {
        "en": "Thank you, your appointment on {when} is confirmed.",
        "sl": {
            "formal": "Hvala, vaš termin {when} je potrjen.",
            "informal": "Hvala, tvoj termin {when} je potrjen.",
        },
    },
    "confirm_cancel": {
        "en": "Shall I cancel your appointment on {when}? Please answer yes or no.",
        "sl": {
            "formal": "Želite, da prekličem vaš termin {when}? Prosim, odgovorite z da ali ne.",
            "informal": "Želiš, da prekličem tvoj termin {when}? Prosim, odgovori z da ali ne.",
        },
    },
    "cancelled": {
        "en": "Your appointment on {when} is cancelled.",
        "sl": {"formal": "Vaš termin {when} je preklican.", "informal": "Tvoj termin {when} je preklican."},
    },
    "kept": {
        "en": "All right, I've left your appointment on {when} as it is.",
        "sl": {
            "formal": "V redu, termin {when} ostaja nespremenjen.",
            "informal": "V redu, termin {when} ostaja nespremenjen.",
        },
    },
    "rescheduled": {
        "en": "Your appointment has been moved from {old} to {when}.",
        "sl": {
            "formal": "Vaš termin je prestavljen z {old} na {when}.",
            "informal": "Tvoj termin je prestavljen z {old} na {when}.",
        },
    },
    "payment_none": {
        "en": "You have no open invoices. Thank you!",
        "sl": {"formal": "Nimate odprtih računov. Hvala!", "informal": "Nimaš odprtih računov. Hvala!"},
    },
    "payment_open": {
        "en": "Invoice {invoice_id} for {amount} {currency} is {status}, due on {due}.",
        "sl": {
            "formal": "Račun {invoice_id} v znesku {amount} {currency} je {status}, z rokom plačila {due}.",
            "informal": "Račun {invoice_id} v znesku {amount} {currency} je {status}, z rokom plačila {due}.",
        },
    },
    "payment_paid": {
        "en": "Your last invoice, {invoice_id} for {amount} {currency}, was paid on {paid}.",
        "sl": {
            "formal": "Vaš zadnji račun {invoice_id} v znesku {amount} {currency} je bil plačan {paid}.",
            "informal": "Tvoj zadnji račun {invoice_id} v znesku {amount} {currency} je bil plačan {paid}.",
        },
    },
    "greeting_reply": {
        "en": "Hello! How can I help you today?",
        "sl": {
            "formal": "Pozdravljeni! Kako vam lahko pomagam?",
            "informal": "Živjo! Kako ti lahko pomagam?",
        },
    },
    "thanks_reply": {
        "en": "You're welcome! Is there anything else I can help with?",
        "sl": {
            "formal": "Ni za kaj! Vam lahko pomagam še s čim?",
            "informal": "Ni za kaj! Ti lahko pomagam še s čim?",
        },
    },
    "anything_else": {
        "en": "Is there anything else I can help you with?",
        "sl": {"formal": "Vam lahko pomagam še s čim?", "informal": "Ti lahko pomagam še s čim?"},
    },
    "goodbye_reply": {
        "en": "Thank you for contacting us.",
        "sl": {"formal": "Hvala, ker ste nas kontaktirali.", "informal": "Hvala, ker si nas kontaktiral."},
    },
    "tool_failed": {
        "en": "I can't reach our customer records right now, so I'm passing you to a colleague who can help.",
        "sl": {
            "formal": "Trenutno ne morem dostopati do podatkov o strankah, zato vas povezujem s sodelavcem.",
            "informal": "Trenutno ne morem dostopati do podatkov o strankah, zato te povezujem s sodelavcem.",
        },
    },
    "already_handed_off": {
        "en": "A colleague will be with you shortly; they can see our whole conversation.",
        "sl": {
            "formal": "Sodelavec bo kmalu z vami; vidi celoten najin pogovor.",
            "informal": "Sodelavec bo kmalu s tabo; vidi celoten najin pogovor.",
        },
    },
}

# Words the bot puts into templates ({status}), per language.
STATUS_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "processing": "being prepared",
        "shipped": "shipped",
        "delivered": "delivered",
        "cancelled": "cancelled",
        "returned": "returned",
        "open": "open",
        "overdue": "overdue",
        "paid": "paid",
    },
    "sl": {
        "processing": "v pripravi",
        "shipped": "odposlano",
        "delivered": "dostavljeno",
        "cancelled": "preklicano",
        "returned": "vrnjeno",
        "open": "odprt",
        "overdue": "zapadel",
        "paid": "plačan",
    },
}


class Phrasebook:
    """Resolves a message key for a language, honouring the tenant's overrides and formality."""

    def __init__(self, tenant: Tenant) -> None:
        self._overrides = tenant.messages
        self._formality = tenant.tone.formality
        self._fallback = tenant.languages[0]

    def text(self, key: str, language: str, **values: Any) -> str:
        template = self._lookup(key, language)
        return template.format(**values) if values else template

    def status(self, word: str, language: str) -> str:
        return STATUS_WORDS.get(language, STATUS_WORDS["en"]).get(word, word)

    def _lookup(self, key: str, language: str) -> str:
        override = self._overrides.get(key, {})
        for lang in (language, self._fallback, "en"):
            if lang in override:
                return override[lang]
            entry = BUILTIN.get(key, {}).get(lang)
            if isinstance(entry, str):
                return entry
            if isinstance(entry, dict):
                return str(entry.get(self._formality.value) or entry[Formality.FORMAL.value])
        raise KeyError(f"no text for message {key!r}")
