"""The shopper's pages: the checkout form and what follows it (pages.py), the signed pay
links and the signed way back to the shop (pay_links.py), the cash-receipt lines
(receipts.py) and the refund-account form (refund_account.py).

May import what the web floor may (checkout/web/__init__.py). Their use cases are in
checkout/services/shopper/ and checkout/services/.
"""
