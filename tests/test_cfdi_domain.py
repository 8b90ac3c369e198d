"""Mexican invoice data (checkout/domain/cfdi.py): pure, no app, no database."""

from __future__ import annotations

import pytest

from checkout.domain import cfdi as c
from checkout.domain.errors import CfdiError

# The RFCs of SAT's published test certificates (CSD de pruebas, CFDI 4.0): real check digits.
SAT_MORALES = ["EKU9003173C9", "IIA040805DZ4", "H&E951128469", "URE180429TM6", "XIA190128J61"]
SAT_FISICAS = [
    "CACX7605101P8",
    "FUNK671228PH6",
    "IAÑL750210963",
    "JUFA7608212V6",
    "KICR630120NX3",
    "MISC491214B86",
    "WATM640917J45",
]


@pytest.mark.parametrize("rfc", SAT_MORALES)
def test_sats_morales_pass(rfc: str) -> None:
    assert c.parse_rfc(rfc) == c.Rfc(rfc, c.Persona.MORAL)


@pytest.mark.parametrize("rfc", SAT_FISICAS)
def test_sats_fisicas_pass(rfc: str) -> None:
    assert c.parse_rfc(rfc) == c.Rfc(rfc, c.Persona.FISICA)


def test_the_check_digit_is_computed_by_sats_weights() -> None:
    assert c.rfc_check_digit("EKU9003173C") == "9"
    assert c.rfc_check_digit("CACX7605101P") == "8"
    assert c.rfc_check_digit("ABC751231Q7") == "0"  # 11 - 0 -> "0"
    assert c.rfc_check_digit("ABC8001019K") == "A"  # 11 - 1 -> "A"
    assert c.parse_rfc("ABC8001019KA").persona is c.Persona.MORAL
    # The generic RFCs carry no valid check digit: they are taken as SAT publishes them.
    assert c.rfc_check_digit("XAXX01010100") != "0"
    assert c.parse_rfc("XAXX010101000").generic


@pytest.mark.parametrize("rfc", [s[:-1] + ("1" if s[-1] != "1" else "2") for s in SAT_MORALES])
def test_a_wrong_check_digit_is_refused(rfc: str) -> None:
    with pytest.raises(CfdiError, match="check digit"):
        c.parse_rfc(rfc)


@pytest.mark.parametrize(
    "rfc",
    [
        "",
        "EKU900317",
        "EK9003173C9",
        "EKUX9003173C9X",
        "EKU9013173C9",
        "EKU9002303C9",
        "1KU9003173C9",
    ],
)
def test_a_malformed_rfc_is_refused(rfc: str) -> None:
    with pytest.raises(CfdiError) as err:
        c.parse_rfc(rfc)
    assert err.value.code == "invalid_rfc"


def test_rfcs_are_read_upper_case_without_separators() -> None:
    assert c.parse_rfc(" cacx-760510-1p8 ").value == "CACX7605101P8"
    assert c.parse_rfc("XAXX010101000").generic


def test_the_catalogues_say_who_may_declare_what() -> None:
    fisicas = {r.code for r in c.regimenes_for(c.Persona.FISICA)}
    morales = {r.code for r in c.regimenes_for(c.Persona.MORAL)}
    assert {"605", "612", "626", "616"} <= fisicas and "601" not in fisicas
    assert {"601", "603", "626"} <= morales and "605" not in morales
    assert {u.code for u in c.usos_for("605", c.Persona.FISICA)} == {
        "D01", "D02", "D03", "D04", "D05", "D06", "D07", "D08", "D09", "D10", "S01"
    }  # fmt: skip
    assert {u.code for u in c.usos_for("601", c.Persona.MORAL)} == {
        "G01", "G02", "G03", "I01", "I02", "I03", "I04", "I05", "I06", "I07", "I08", "S01"
    }  # fmt: skip
    assert {u.code for u in c.usos_for("616", c.Persona.FISICA)} == {"S01"}


@pytest.mark.parametrize("cp", ["01000", "06600", "99999"])
def test_postal_codes(cp: str) -> None:
    assert c.parse_postal_code(cp) == cp


@pytest.mark.parametrize("cp", ["", "0600", "066000", "00123", "0660a", "０６６００"])
def test_bad_postal_codes(cp: str) -> None:
    with pytest.raises(CfdiError):
        c.parse_postal_code(cp)


def _data(**changes: str) -> c.InvoiceData:
    fields = {
        "rfc": "EKU9003173C9",
        "name": "Escuela Kemper  Urgate",
        "regimen": "601",
        "uso": "g03",
        "postal_code": "42501",
        "email": " facturas@example.mx ",
    }
    fields.update(changes)
    return c.parse_invoice_data(**fields)


def test_invoice_data_is_checked_together() -> None:
    data = _data()
    assert data == c.InvoiceData(
        "EKU9003173C9", c.Persona.MORAL, "ESCUELA KEMPER URGATE", "601", "G03", "42501",
        "facturas@example.mx",
    )  # fmt: skip
    fisica = _data(rfc="CACX7605101P8", regimen="605", uso="D01", email="")
    assert fisica.persona is c.Persona.FISICA and fisica.email is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"regimen": "605"}, "regimen_not_for_persona"),  # a company earns no salary
        ({"rfc": "CACX7605101P8", "regimen": "601"}, "regimen_not_for_persona"),
        ({"rfc": "CACX7605101P8", "regimen": "605", "uso": "G03"}, "uso_not_for_regimen"),
        ({"uso": "D01"}, "uso_not_for_regimen"),  # deducciones personales: físicas only
        ({"regimen": "699"}, "invalid_regimen"),
        ({"uso": "CN01"}, "invalid_uso"),  # nómina is no purchase
        ({"name": "   "}, "invalid_name"),
        ({"postal_code": "1234"}, "invalid_postal_code"),
        ({"rfc": "XAXX010101000", "regimen": "626", "uso": "G03"}, "generic_rfc"),
        ({"rfc": "XAXX010101000", "regimen": "605", "uso": "S01"}, "generic_rfc"),
    ],
)
def test_invoice_data_sat_would_refuse(changes: dict[str, str], code: str) -> None:
    with pytest.raises(CfdiError) as err:
        _data(**changes)
    assert err.value.code == code


def test_the_generic_rfc_goes_with_616_and_s01() -> None:
    assert _data(rfc="XAXX010101000", regimen="616", uso="S01").rfc == "XAXX010101000"
