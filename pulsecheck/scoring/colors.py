"""Colours a scoring model may name: `#rrggbb`, `#rgb` or one of the CSS named colours. Anything else (a CSS
declaration smuggled into a colour, `url(...)`) is refused when the model is parsed and never reaches a page."""

from __future__ import annotations

import re

# CSS Color Module Level 4, section 6.1 (named colours), all 148.
CSS_COLOR_NAMES = frozenset(
    """
    aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet brown
    burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan darkblue darkcyan
    darkgoldenrod darkgray darkgreen darkgrey darkkhaki darkmagenta darkolivegreen darkorange darkorchid
    darkred darksalmon darkseagreen darkslateblue darkslategray darkslategrey darkturquoise darkviolet
    deeppink deepskyblue dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro
    ghostwhite gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo ivory khaki
    lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan lightgoldenrodyellow
    lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen lightskyblue lightslategray
    lightslategrey lightsteelblue lightyellow lime limegreen linen magenta maroon mediumaquamarine
    mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue mediumspringgreen mediumturquoise
    mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite navy oldlace olive olivedrab
    orange orangered orchid palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru
    pink plum powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown seagreen
    seashell sienna silver skyblue slateblue slategray slategrey snow springgreen steelblue tan teal thistle
    tomato turquoise violet wheat white whitesmoke yellow yellowgreen
    """.split()
)
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def is_color(value: object) -> bool:
    """True when `value` is `#rrggbb`, `#rgb` or a CSS colour name (any case)."""
    return isinstance(value, str) and (_HEX.fullmatch(value) is not None or value.lower() in CSS_COLOR_NAMES)


def safe_color(value: object, fallback: str = "gray") -> str:
    """`value` when it is a valid colour, else `fallback`: what a renderer emits into CSS."""
    return value if isinstance(value, str) and is_color(value) else fallback


# A bucket that names no colour: the lowest red, the highest green, those between amber (CSS has no `amber`).
RED, AMBER, GREEN = "red", "#ffbf00", "green"


def default_bucket_color(index: int, count: int) -> str:
    """The colour of bucket `index` (0: the lowest) of `count` buckets when the model names none."""
    if count <= 1:
        return AMBER
    if index == 0:
        return RED
    return GREEN if index == count - 1 else AMBER
