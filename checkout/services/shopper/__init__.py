"""The shopper's use cases: the checkout form (form.py: methods, fields, the payer's
details, starting a payment), the checkout as the pages read it (page_reads.py: one narrow
query, frozen views) and the payment-details page (payment_details.py).

May import what the services may (checkout/services/__init__.py).
"""
