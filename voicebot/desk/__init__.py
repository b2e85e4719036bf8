"""The handoff desk: agents take conversations the bot handed over (chat, voice, e-mail), answer
them, and hand them back or close them; the customer is told what is happening.

    waits      the wait estimate (queue position, median of recent waits) and its wording
    notices    what is pushed to the customer's chat (topic ``customer.<conversation id>``)
    context    one handoff as the agent sees it: context, customer, transcript, e-mail thread
    service    DeskService: queue, take, reply, e-mail reply, hand back, close, take over
"""
