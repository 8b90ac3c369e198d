"""Bank names in the page's language, from the code (or the name) a provider sends.

Providers name banks their own way: TeemoPay `IBK`/`KBSTAR` with a Korean name, Diamond Pay
`KB` with an English name, KFTC's three-digit codes in other answers, a CLABE's first three
digits (Banxico's code) in Mexico. Each bank has one row: every code and name it is known
by, and its name in each page language. A bank we do not know shows as the provider wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from checkout.domain.accounts import KOREA_BANKS, MEXICO_BANK_CODES


@dataclass(frozen=True)
class Bank:
    names: dict[str, str]  # language -> name
    aliases: tuple[str, ...]  # codes and names providers send (compared case-blind)


def _kr(ko: str, en: str, *aliases: str) -> Bank:
    return Bank({"ko": ko, "en": en, "es": en}, (ko, en, *aliases))


def _mx(name: str, code: str, *aliases: str) -> Bank:
    return Bank({"ko": name, "en": name, "es": name}, (code, name, *aliases))


BANKS: tuple[Bank, ...] = (
    _kr("KB국민은행", "KB Kookmin Bank", "004", "KB", "KBSTAR", "KOOKMIN", "국민은행"),
    _kr("신한은행", "Shinhan Bank", "088", "SHINHAN"),
    _kr("우리은행", "Woori Bank", "020", "WOORI"),
    _kr("하나은행", "Hana Bank", "081", "HANA", "KEB Hana Bank"),
    _kr("IBK기업은행", "IBK Industrial Bank of Korea", "003", "IBK", "기업은행"),
    _kr("NH농협은행", "NH NongHyup Bank", "011", "NH", "NONGHYUP", "농협은행"),
    _kr("SC제일은행", "SC First Bank", "023", "SC", "SC제일"),
    _kr("한국씨티은행", "Citibank Korea", "027", "CITI"),
    _kr("수협은행", "Suhyup Bank", "007", "SUHYUP"),
    _kr("iM뱅크", "iM Bank (DGB Daegu Bank)", "031", "DGB", "대구은행"),
    _kr("부산은행", "Busan Bank", "032", "BUSAN"),
    _kr("광주은행", "Kwangju Bank", "034", "KWANGJU"),
    _kr("제주은행", "Jeju Bank", "035", "JEJU"),
    _kr("전북은행", "Jeonbuk Bank", "037", "JEONBUK"),
    _kr("경남은행", "Kyongnam Bank", "039", "KYONGNAM"),
    _kr("새마을금고", "MG Saemaul Geumgo", "045", "MG"),
    _kr("우체국", "Korea Post", "071", "POST", "EPOST"),
    _kr("카카오뱅크", "KakaoBank", "090", "KAKAOBANK"),
    _kr("케이뱅크", "K Bank", "089", "KBANK"),
    _kr("토스뱅크", "Toss Bank", "092", "TOSSBANK"),
    _kr("KDB산업은행", "KDB Korea Development Bank", "002", "KDB", "산업은행"),
    _kr("신협", "Shinhyup (Credit Unions)", "048", "신용협동조합"),
    _kr("산림조합", "Korea Forestry Cooperatives", "064", "NFCF"),
    _kr("저축은행", "Savings Bank", "050", "상호저축은행"),
    # A Mexican bank by its CLABE prefix ("MX<ABM code>", clabe_bank_code) and its SPEI code
    # (what refunds store: domain/accounts.clabe_bank).
    _mx("Banamex", "MX002", "40002", "BANAMEX", "Citibanamex"),
    _mx("BBVA México", "MX012", "40012", "BBVA", "BBVA Bancomer", "BBVA MEXICO"),
    _mx("Santander", "MX014", "40014", "SANTANDER"),
    _mx("HSBC", "MX021", "40021"),
    _mx("Scotiabank", "MX044", "40044", "SCOTIABANK"),
    _mx("Banorte", "MX072", "40072", "BANORTE"),
    _mx("Banco Azteca", "MX127", "40127", "AZTECA"),
    _mx("BanCoppel", "MX137", "40137", "BANCOPPEL"),
    _mx("STP", "MX646", "90646"),
    _mx("Nu México", "MX638", "40638", "NU", "NU MEXICO"),
    _mx("Banxico", "MX001", "2001", "BANXICO"),
)

_BY_ALIAS = {alias.casefold(): bank for bank in BANKS for alias in bank.aliases}


def bank_name(code: str | None, name: str | None, language: str) -> str | None:
    """The bank's name for a page in `language`, or the provider's own text if unknown."""
    for key in (code, name):
        bank = _BY_ALIAS.get((key or "").strip().casefold())
        if bank is not None:
            return bank.names.get(language, bank.names["en"])
    return name or code


def clabe_bank_code(clabe: str | None) -> str | None:
    """The bank of an 18-digit CLABE: its first three digits (Banxico's code), as "MX<nnn>"."""
    if clabe and len(clabe) == 18 and clabe.isdigit():
        return f"MX{clabe[:3]}"
    return None


# Not banks a person keeps an account at: the central bank (Banxico) takes no refunds.
_NOT_FOR_PEOPLE = frozenset({"MX001"})


def refund_bank_choices(currency: str, language: str) -> list[tuple[str, str]]:
    """The banks a refund in `currency` can go to, as (code the refund API takes, name in
    `language`), sorted by name: KFTC's three digits for KRW, SPEI's five for MXN (a CLABE's
    first three digits are its last three). Only banks in BANKS: the ones people bank at."""
    choices: dict[str, str] = {}
    for bank in BANKS:
        name = bank.names.get(language, bank.names["en"])
        for alias in bank.aliases:
            if currency == "KRW" and alias in KOREA_BANKS:
                choices[alias] = name
            elif currency == "MXN" and alias.startswith("MX") and alias not in _NOT_FOR_PEOPLE:
                spei = [code for code in MEXICO_BANK_CODES if code[-3:] == alias[2:]]
                for code in spei[:1]:
                    choices[code] = name
    return sorted(choices.items(), key=lambda item: item[1].casefold())


def korean_banks(language: str) -> tuple[tuple[str, str], ...]:
    """The Korean banks a person keeps an account at, as (KFTC three-digit code, name in
    `language`), sorted by that name: what a shopper picks a refund's bank from."""
    return tuple(refund_bank_choices("KRW", language))
