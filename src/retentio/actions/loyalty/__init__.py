"""Loyalty programs and their ledger: programs as TOML files (:mod:`.programs`), the
bookkeeping of lots and entries (:mod:`.book`), the ledger on the store
(:mod:`.ledger`), and the rules applied to orders (:mod:`.rules`, :mod:`.orders`)."""
