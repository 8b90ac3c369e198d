"""Code 128 barcodes as inline SVG, for cash payment references a store clerk scans.

Code set C (two digits a symbol) for an all-digit reference of even length, code set B
otherwise (printable ASCII). The symbol is: start, data, the modulo-103 check symbol, stop,
with a quiet zone of ten modules each side. No external resources.
"""

from __future__ import annotations

from html import escape

from checkout.domain.errors import NotEncodable

# Bar and space widths (in modules) of the 107 symbols, values 0..102, then Start A, Start B,
# Start C (103..105) and Stop (106, with its final bar). ISO/IEC 15417, table 1.
PATTERNS: tuple[str, ...] = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
)  # fmt: skip
START_B, START_C, STOP = 104, 105, 106
QUIET_MODULES = 10


def symbol_values(text: str) -> list[int]:
    """The symbol values, start to stop, check symbol included."""
    if not text:
        raise NotEncodable("nothing to encode")
    if text.isdigit() and text.isascii() and len(text) % 2 == 0:
        data = [int(text[i : i + 2]) for i in range(0, len(text), 2)]
        start = START_C
    else:
        if any(not 32 <= ord(c) <= 126 for c in text):
            raise NotEncodable("only printable ASCII can be encoded")
        data = [ord(c) - 32 for c in text]
        start = START_B
    check = (start + sum(weight * value for weight, value in enumerate(data, 1))) % 103
    return [start, *data, check, STOP]


def modules(text: str) -> str:
    """The symbol as a string of modules: "1" bar, "0" space (quiet zones excluded)."""
    out = []
    for value in symbol_values(text):
        for index, width in enumerate(PATTERNS[value]):
            out.append(("1" if index % 2 == 0 else "0") * int(width))
    return "".join(out)


def code128_svg(text: str, height: int = 60, label: str | None = None) -> str:
    """An inline SVG of `text` (one unit a module), scaled by CSS; `label` is its name."""
    bars = modules(text)
    width = len(bars) + 2 * QUIET_MODULES
    rects = []
    x = 0
    while x < len(bars):
        if bars[x] == "1":
            end = x
            while end < len(bars) and bars[end] == "1":
                end += 1
            rects.append(f'<rect x="{x + QUIET_MODULES}" width="{end - x}" height="{height}"/>')
            x = end
        else:
            x += 1
    name = escape(label or text, quote=True)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{name}" preserveAspectRatio="none" class="barcode">'
        f'<rect width="{width}" height="{height}" fill="#fff"/><g fill="#000">'
        + "".join(rects)
        + "</g></svg>"
    )
