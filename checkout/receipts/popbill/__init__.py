"""Popbill (Linkhub) cash receipts: token signing, pure mapping, transport."""
