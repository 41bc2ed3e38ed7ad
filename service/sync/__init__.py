"""``spreadwatch positions sync``'s pure parts: the account's holdings grouped into credit
spreads (:mod:`.group`), and those spreads as positions to import (:mod:`.build`)."""
