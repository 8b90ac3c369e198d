"""Mexican invoice data (datos de facturación, CFDI 4.0) a shopper may give at checkout.

We issue no invoice: the shop invoices with its own PAC from what is collected here. These
are SAT's rules for the receptor's data: the RFC (format and check digit), the régimen
fiscal and uso de CFDI from SAT's catalogues (c_RegimenFiscal, c_UsoCFDI) and which usos
each régimen allows, and the código postal's format (the full c_CodigoPostal catalogue is
not kept here: the PAC checks it against the RFC's registered address).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date

from checkout.domain.errors import CfdiError


class Persona(enum.StrEnum):
    FISICA = "fisica"  # 13-character RFC
    MORAL = "moral"  # 12-character RFC


# ---------------------------------------------------------------- RFC
# Letters of the name part: SAT allows Ñ and & (e.g. "H&E951128469", "IAÑL750210963").
_RFC = re.compile(r"([A-ZÑ&]{3,4})([0-9]{2})([0-9]{2})([0-9]{2})([A-Z0-9]{2})([0-9A])")
# SAT's value of each character in the check-digit sum (Anexo 20 / the RFC algorithm).
_RFC_VALUES = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ Ñ")}
GENERIC_RFCS = {
    "XAXX010101000": "público en general",
    "XEXX010101000": "residente en el extranjero",
}


def rfc_check_digit(first: str) -> str:
    """The check digit of an RFC from its first 11 (moral) or 12 (física) characters.

    A moral RFC is padded with a leading space to 12; each character's value times its
    weight (13 down to 2) is summed; the digit is 11 - sum mod 11, with 11 -> "0" and
    10 -> "A".
    """
    padded = first.rjust(12)
    total = sum(_RFC_VALUES[c] * (13 - i) for i, c in enumerate(padded))
    digit = 11 - total % 11
    if digit == 11:
        return "0"
    if digit == 10:
        return "A"
    return str(digit)


@dataclass(frozen=True)
class Rfc:
    value: str
    persona: Persona

    @property
    def generic(self) -> bool:
        return self.value in GENERIC_RFCS


def parse_rfc(text: str) -> Rfc:
    """An RFC, upper-cased and stripped of spaces and hyphens; CfdiError when its format,
    its date or its check digit is wrong. The two generic RFCs are accepted as they are."""
    value = re.sub(r"[\s-]", "", text).upper()
    if value in GENERIC_RFCS:
        return Rfc(value, Persona.FISICA)
    match = _RFC.fullmatch(value)
    if match is None or len(value) not in (12, 13):
        raise CfdiError(
            "invalid_rfc",
            "an RFC is 3 letters (moral) or 4 (física), a date YYMMDD and 3 characters",
        )
    _, yy, mm, dd, _, check = match.groups()
    try:
        # The century is not in the RFC: 2000 is a leap year, so 29 Feb of any YY passes.
        date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        raise CfdiError("invalid_rfc", "the RFC's date is not a date") from None
    if rfc_check_digit(value[:-1]) != check:
        raise CfdiError("invalid_rfc", "the RFC's check digit is wrong")
    return Rfc(value, Persona.FISICA if len(value) == 13 else Persona.MORAL)


# ---------------------------------------------------------------- catalogues
@dataclass(frozen=True)
class Regimen:
    code: str
    name: str
    fisica: bool
    moral: bool


# c_RegimenFiscal (SAT catálogos CFDI 4.0): code, name, for personas físicas, morales.
REGIMENES: dict[str, Regimen] = {
    r.code: r
    for r in (
        Regimen("601", "General de Ley Personas Morales", False, True),
        Regimen("603", "Personas Morales con Fines no Lucrativos", False, True),
        Regimen("605", "Sueldos y Salarios e Ingresos Asimilados a Salarios", True, False),
        Regimen("606", "Arrendamiento", True, False),
        Regimen("607", "Régimen de Enajenación o Adquisición de Bienes", True, False),
        Regimen("608", "Demás ingresos", True, False),
        Regimen(
            "610",
            "Residentes en el Extranjero sin Establecimiento Permanente en México",
            True,
            True,
        ),
        Regimen("611", "Ingresos por Dividendos (socios y accionistas)", True, False),
        Regimen(
            "612", "Personas Físicas con Actividades Empresariales y Profesionales", True, False
        ),
        Regimen("614", "Ingresos por intereses", True, False),
        Regimen("615", "Régimen de los ingresos por obtención de premios", True, False),
        Regimen("616", "Sin obligaciones fiscales", True, False),
        Regimen(
            "620",
            "Sociedades Cooperativas de Producción que optan por diferir sus ingresos",
            False,
            True,
        ),
        Regimen("621", "Incorporación Fiscal", True, False),
        Regimen("622", "Actividades Agrícolas, Ganaderas, Silvícolas y Pesqueras", False, True),
        Regimen("623", "Opcional para Grupos de Sociedades", False, True),
        Regimen("624", "Coordinados", False, True),
        Regimen(
            "625",
            "Régimen de las Actividades Empresariales con ingresos a través de "
            "Plataformas Tecnológicas",
            True,
            False,
        ),
        Regimen("626", "Régimen Simplificado de Confianza", True, True),
    )
}

# c_UsoCFDI's "Régimen Fiscal Receptor" column, by group of usos.
_BUSINESS = frozenset({"601", "603", "606", "612", "620", "621", "622", "623", "624", "625", "626"})
_PERSONAL = frozenset({"605", "606", "607", "608", "611", "612", "614", "615", "625"})
_ANY = frozenset(REGIMENES)  # S01 (sin efectos fiscales) is open to every régimen


@dataclass(frozen=True)
class Uso:
    code: str
    name: str
    fisica: bool
    moral: bool
    regimenes: frozenset[str]


# c_UsoCFDI (CFDI 4.0) without CP01 (pagos) and CN01 (nómina): no purchase is either.
USOS: dict[str, Uso] = {
    u.code: u
    for u in (
        Uso("G01", "Adquisición de mercancías", True, True, _BUSINESS),
        Uso("G02", "Devoluciones, descuentos o bonificaciones", True, True, _BUSINESS),
        Uso("G03", "Gastos en general", True, True, _BUSINESS),
        Uso("I01", "Construcciones", True, True, _BUSINESS),
        Uso("I02", "Mobiliario y equipo de oficina por inversiones", True, True, _BUSINESS),
        Uso("I03", "Equipo de transporte", True, True, _BUSINESS),
        Uso("I04", "Equipo de computo y accesorios", True, True, _BUSINESS),
        Uso("I05", "Dados, troqueles, moldes, matrices y herramental", True, True, _BUSINESS),
        Uso("I06", "Comunicaciones telefónicas", True, True, _BUSINESS),
        Uso("I07", "Comunicaciones satelitales", True, True, _BUSINESS),
        Uso("I08", "Otra maquinaria y equipo", True, True, _BUSINESS),
        Uso("D01", "Honorarios médicos, dentales y gastos hospitalarios", True, False, _PERSONAL),
        Uso("D02", "Gastos médicos por incapacidad o discapacidad", True, False, _PERSONAL),
        Uso("D03", "Gastos funerales", True, False, _PERSONAL),
        Uso("D04", "Donativos", True, False, _PERSONAL),
        Uso(
            "D05",
            "Intereses reales efectivamente pagados por créditos hipotecarios (casa habitación)",
            True,
            False,
            _PERSONAL,
        ),
        Uso("D06", "Aportaciones voluntarias al SAR", True, False, _PERSONAL),
        Uso("D07", "Primas por seguros de gastos médicos", True, False, _PERSONAL),
        Uso("D08", "Gastos de transportación escolar obligatoria", True, False, _PERSONAL),
        Uso(
            "D09",
            "Depósitos en cuentas para el ahorro, primas que tengan como base planes de pensiones",
            True,
            False,
            _PERSONAL,
        ),
        Uso("D10", "Pagos por servicios educativos (colegiaturas)", True, False, _PERSONAL),
        Uso("S01", "Sin efectos fiscales", True, True, _ANY),
    )
}


def regimenes_for(persona: Persona) -> list[Regimen]:
    """The régimenes a persona física or moral may declare (for the form's list)."""
    return [r for r in REGIMENES.values() if (r.fisica if persona is Persona.FISICA else r.moral)]


def usos_for(regimen_code: str, persona: Persona) -> list[Uso]:
    """The usos de CFDI a régimen allows, for this kind of persona (for the form's list)."""
    return [
        u
        for u in USOS.values()
        if regimen_code in u.regimenes and (u.fisica if persona is Persona.FISICA else u.moral)
    ]


# ---------------------------------------------------------------- código postal
_CP = re.compile(r"[0-9]{5}")


def parse_postal_code(text: str) -> str:
    """A Mexican código postal: five digits, the first two a state's range (01 to 99)."""
    value = text.strip()
    if not (value.isascii() and _CP.fullmatch(value)) or value.startswith("00"):
        raise CfdiError("invalid_postal_code", "a código postal has five digits")
    return value


# ---------------------------------------------------------------- together
MAX_NAME = 254  # CFDI 4.0 Receptor/@Nombre


@dataclass(frozen=True)
class InvoiceData:
    """Validated datos de facturación, as the shop receives them."""

    rfc: str
    persona: Persona
    name: str
    regimen: str
    uso: str
    postal_code: str
    email: str | None


def parse_invoice_data(
    *,
    rfc: str,
    name: str,
    regimen: str,
    uso: str,
    postal_code: str,
    email: str | None = None,
) -> InvoiceData:
    """All the fields checked together: a régimen the persona may declare, a uso the
    régimen allows. The generic RFC for the público en general takes only 616 and S01
    (CFDI 4.0 rule). E-mail syntax is the form's, not SAT's."""
    parsed = parse_rfc(rfc)
    clean_name = " ".join(name.split()).upper()
    if not clean_name or len(clean_name) > MAX_NAME:
        raise CfdiError("invalid_name", f"the name or razón social is 1 to {MAX_NAME} characters")
    found = REGIMENES.get(regimen.strip())
    if found is None:
        raise CfdiError("invalid_regimen", "the régimen fiscal is not in SAT's catalogue")
    if not (found.fisica if parsed.persona is Persona.FISICA else found.moral):
        raise CfdiError(
            "regimen_not_for_persona",
            f"régimen {found.code} is not for a persona {parsed.persona.value}",
        )
    chosen = USOS.get(uso.strip().upper())
    if chosen is None:
        raise CfdiError("invalid_uso", "the uso de CFDI is not in SAT's catalogue")
    if found.code not in chosen.regimenes or not (
        chosen.fisica if parsed.persona is Persona.FISICA else chosen.moral
    ):
        raise CfdiError(
            "uso_not_for_regimen", f"uso {chosen.code} is not allowed with régimen {found.code}"
        )
    if parsed.generic and (found.code != "616" or chosen.code != "S01"):
        raise CfdiError("generic_rfc", "the generic RFC goes with régimen 616 and uso S01 only")
    return InvoiceData(
        parsed.value,
        parsed.persona,
        clean_name,
        found.code,
        chosen.code,
        parse_postal_code(postal_code),
        email.strip() if email and email.strip() else None,
    )
