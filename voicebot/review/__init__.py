"""Audits and knowledge upkeep: the knowledge-base gaps report (`voicebot.review.gaps`).

The conversation search and the answer marks live in `voicebot.storage.reviews`; the HTTP side in
`voicebot.api.review` and `voicebot.api.knowledge`; KB edits in `voicebot.knowledge.console`.
"""
