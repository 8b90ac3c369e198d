"""Issuers of the receipts the law asks for (Korean cash receipts), one package per issuer,
shaped like checkout/providers/<type>/: signing, pure mapping, transport."""
