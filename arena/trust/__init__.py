"""Defences and secrets: pseudonymous voter ids (``identity``), which proxies may name the client
(``client_address``), rate limits in Redis (``rate_limit``), the SSRF guard (``ssrf``), owners'
keys encrypted at rest (``secret_box``) and battles in which a model gave itself away
(``self_identification``).

May import: arena.errors, arena.keys, leaderboard.data.
"""
