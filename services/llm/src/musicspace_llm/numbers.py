"""Numbers in a query as hard filters: "over 160 bpm", "템포 80 이하", "danceability above 0.85",
"from the 1980s", "2000년대", "de los 90", "released after 2015", "between 120 and 130 bpm".

A number becomes a filter only next to a word that says what it measures (bpm, tempo, a
feature name) or that it is a time (a decade suffix, "from", "released", "년"), so titles
with numbers ("7 rings", "1999", "Maroon 5") are left to the lexical index. What was read is
cut out of the text, so the rest of the query is understood without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from musicspace_shared.features import FEATURE_RANGES

# Words naming a feature (English, Korean, Spanish); bpm and tempo are tempo.
_FEATURE_WORDS = {
    "tempo": ("bpm", "tempo", "템포", "비피엠", "beats per minute"),
    "danceability": ("danceability", "댄서빌리티", "춤추기", "bailabilidad"),
    "energy": ("energy", "에너지", "energía", "energia"),
    "valence": ("valence", "positivity", "밸런스", "긍정", "valencia"),
    "acousticness": ("acousticness", "어쿠스틱", "acústica", "acustica"),
    "instrumentalness": ("instrumentalness", "연주", "instrumentalidad"),
    "liveness": ("liveness", "라이브", "en vivo"),
    "speechiness": ("speechiness", "말하기", "habla"),
    "loudness": ("loudness", "db", "음량", "volumen"),
}
_ABOVE = (
    r"over|above|more than|greater than|higher than|faster than|louder than|at least|min(?:imum)?"
    r"|>=?|más de|mas de|mayor(?:es)? (?:a|que)|por encima de|superior(?:es)? a|arriba de"
)
_BELOW = (
    r"under|below|less than|lower than|slower than|quieter than|at most|max(?:imum)?|<=?"
    r"|menos de|menor(?:es)? (?:a|que)|por debajo de|inferior(?:es)? a|hasta"
)
_KO_ABOVE = r"이상|넘는|넘게|초과|보다 빠른|보다 높은|이상인|이상의"
_KO_BELOW = r"이하|미만|아래|보다 느린|보다 낮은|이하인|이하의|밑"
_FEATURE = "|".join(
    sorted((re.escape(w) for ws in _FEATURE_WORDS.values() for w in ws), key=len, reverse=True)
)


@dataclass
class Constraints:
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    years: tuple[int, int] | None = None
    said: dict[str, str] = field(default_factory=dict)  # "tempo" / "year" -> the words read
    rest: str = ""  # the query with what was read cut out

    @property
    def empty(self) -> bool:
        return not self.ranges and self.years is None


def _feature_of(word: str) -> str:
    word = word.lower()
    return next(name for name, words in _FEATURE_WORDS.items() if word in words)


def _value(feature: str, number: str, percent: str) -> float | None:
    value = float(number)
    low, high = FEATURE_RANGES[feature]
    if feature not in ("tempo", "loudness") and (percent or value >= 10.0):
        value /= 100.0  # "danceability over 85%" / "energy above 80"
    if feature == "loudness" and value > 0:
        value = -value
    return value if low <= value <= high else None


def _decade(digits: str) -> int | None:
    """ "80" -> 1980, "1980" -> 1980, "2000" -> 2000, "00" -> 2000, "10" -> 2010."""
    if len(digits) == 4:
        year = int(digits)
        return year if year % 10 == 0 and 1900 <= year <= 2090 else None
    if len(digits) == 2 and digits.endswith("0"):
        return 1900 + int(digits) if int(digits) >= 30 else 2000 + int(digits)
    return None


def _n(i: int = 1) -> str:
    return rf"(?P<n{i}>\d+(?:\.\d+)?)\s*(?P<pc{i}>%?)"


_F = rf"(?P<f>{_FEATURE})"
_CMP = rf"(?P<cmp>{_ABOVE}|{_BELOW})"
_KO_CMP = rf"(?P<cmp>{_KO_ABOVE}|{_KO_BELOW})"
# Named groups: f (feature word), cmp (comparator), n1/pc1 and n2/pc2 (numbers, percent signs).
_PATTERNS: list[re.Pattern[str]] = [
    re.compile(p, re.I)
    for p in (
        # "between 120 and 130 bpm", "120-130 bpm", "entre 120 y 130 bpm"
        rf"(?:between|entre)\s+{_n(1)}\s*(?:and|y|to|-)\s*{_n(2)}\s*{_F}",
        rf"(?:between|entre)?\s*{_n(1)}\s*(?:-|~|to|a)\s*{_n(2)}\s*{_F}",
        # "tempo 120-130", "bpm between 90 and 100"
        rf"{_F}\s*(?:between|entre|of|:)?\s*{_n(1)}\s*(?:-|~|to|and|y|a)\s*{_n(2)}",
        # "danceability above 0.85", "tempo under 90", "tempo over 200 bpm"
        rf"{_F}\s*(?:is\s+|of\s+)?{_CMP}\s*{_n(1)}(?:\s*bpm\b)?",
        # "over 160 bpm", "más de 140 bpm"
        rf"{_CMP}\s+{_n(1)}\s*{_F}",
        # "160+ bpm"
        rf"{_n(1)}\s*(?P<plus>\+)\s*{_F}",
        # Korean: "템포 80 이하", "BPM 150 이상", "160 bpm 이상", "150bpm 넘는"
        rf"{_F}\s*(?:가|이|는)?\s*{_n(1)}\s*{_KO_CMP}",
        rf"{_n(1)}\s*{_F}\s*{_KO_CMP}",
        # "120 bpm", "around 120 bpm": give or take 5
        r"(?:around|about|roughly|approximately|cerca de|alrededor de|~)?\s*(?P<n1>\d+(?:\.\d+)?)"
        r"\s*(?P<about>bpm)\b",
    )
]
_DECADE = re.compile(
    r"(?:(?:from|of|in|during)\s+)?(?:the\s+)?'?(\d{2}|\d{4})'?s\b"  # "the 1980s", "80s", "'90s"
    r"|(\d{2}|\d{4})\s*년대"  # "80년대", "2000년대"
    r"|(?:de\s+)?(?:los\s+)?(?:años|anos|década de(?:\s+los)?)\s+'?(\d{2}|\d{4})\b"  # "años 90"
    r"|\b(?:de\s+)?los\s+'?(\d{2}|\d{4})\b",  # "de los 80", "los 2000"
    re.I,
)
_YEAR = re.compile(
    r"(?:(released|from|in|since|after|before|until|desde|antes de|después de|del?|en)\s+(?:the\s+year\s+)?)"
    r"((?:19|20)\d{2})\b(?!\s*(?:년대|s\b))"
    r"|((?:19|20)\d{2})\s*년(?!대)\s*(이후|이전|부터|까지)?",
    re.I,
)
_DIGIT = re.compile(r"\d")
_YEAR_SPAN = re.compile(
    r"(?:from|between|entre|de)?\s*((?:19|20)\d{2})\s*(?:-|–|to|and|y|a|~)\s*((?:19|20)\d{2})\b",
    re.I,
)


def parse_constraints(query: str) -> Constraints:
    """Feature ranges and a release-year range read from the query, and the rest of the query."""
    out = Constraints()
    if _DIGIT.search(query) is None:  # every pattern reads a number: most queries have none
        out.rest = " ".join(query.split())
        return out
    text = query
    for pattern in _PATTERNS:
        for m in list(pattern.finditer(text)):
            if _apply(out, m):
                text = text.replace(m.group(0), " ", 1)
    for m in list(_YEAR_SPAN.finditer(text)):
        low, high = int(m.group(1)), int(m.group(2))
        if low <= high:
            _years(out, low, high, m.group(0))
            text = text.replace(m.group(0), " ", 1)
    for m in list(_DECADE.finditer(text)):
        start = _decade(next(g for g in m.groups() if g))
        if start is not None:
            _years(out, start, start + 9, m.group(0))
            text = text.replace(m.group(0), " ", 1)
    for m in list(_YEAR.finditer(text)):
        if m.group(2):
            word, year = (m.group(1) or "").lower(), int(m.group(2))
            low, high = {
                "since": (year, 2100),
                "after": (year + 1, 2100),
                "desde": (year, 2100),
                "después de": (year + 1, 2100),
                "before": (1900, year - 1),
                "antes de": (1900, year - 1),
                "until": (1900, year),
            }.get(word, (year, year))
        else:
            year, word = int(m.group(3)), m.group(4) or ""
            low, high = {
                "이후": (year, 2100),
                "부터": (year, 2100),
                "이전": (1900, year - 1),
                "까지": (1900, year),
            }.get(word, (year, year))
        _years(out, low, high, m.group(0))
        text = text.replace(m.group(0), " ", 1)
    out.rest = " ".join(text.split())
    return out


def _years(out: Constraints, low: int, high: int, said: str) -> None:
    if out.years is not None:  # "70s and 80s": one span covering both
        low, high = min(low, out.years[0]), max(high, out.years[1])
    out.years = (low, high)
    out.said["year"] = " ".join(filter(None, (out.said.get("year"), said.strip())))


def _apply(out: Constraints, m: re.Match[str]) -> bool:
    """Record the range a match states; False when the numbers make no sense for the feature."""
    g = m.groupdict()
    said = m.group(0)
    if g.get("about"):
        value = float(g["n1"])
        if "tempo" in out.ranges or not 40 <= value <= 250:
            return False
        return _range(out, "tempo", value - 5, value + 5, said)
    feature = _feature_of(g["f"])
    value = _value(feature, g["n1"], g.get("pc1") or "")
    if g.get("n2") is not None:  # a span
        high = _value(feature, g["n2"], g.get("pc2") or "")
        if value is None or high is None or value > high:
            return False
        return _range(out, feature, value, high, said)
    if value is None:
        return False
    cmp = (g.get("cmp") or "").lower()
    above = bool(g.get("plus")) or any(
        re.fullmatch(words, cmp) is not None for words in (_ABOVE, _KO_ABOVE)
    )
    return _range(out, feature, value if above else None, None if above else value, said)


def _range(
    out: Constraints, feature: str, low: float | None, high: float | None, said: str
) -> bool:
    old_low, old_high = out.ranges.get(feature, (None, None))
    low = (
        max(x for x in (low, old_low) if x is not None)
        if low is not None or old_low is not None
        else None
    )
    high = (
        min(x for x in (high, old_high) if x is not None)
        if high is not None or old_high is not None
        else None
    )
    out.ranges[feature] = (low, high)
    out.said[feature] = " ".join(filter(None, (out.said.get(feature), said.strip())))
    return True
