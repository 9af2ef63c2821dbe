"""Artist names across scripts: "드레이크" finds Drake, "퀸" Queen, "아리아나 그란데" Ariana Grande.

Korean writes foreign names by sound, so both scripts are reduced to one coarse sound alphabet
and compared there; nothing is listed by hand:
- Hangul is decomposed into its letters (jamo, by the Unicode arithmetic) and each letter gets
  its sound class; the filler vowel ㅡ that Korean inserts between consonants ("드" in 드레이크
  for the "d" of Drake) is dropped;
- a Latin name is spelled by the same classes with the usual English sound rules (c/k/q, ph/f/v,
  sh, silent final e, r without a following vowel is not pronounced, ...), the way Korean
  loanword spelling hears it;
- the consonant skeleton ("tlk" for both 드레이크 and Drake) finds candidates, at most one
  consonant apart for long names; the distance over the full key (vowels included) picks.
Acronym names ("BTS") are also matched by the initials of the Hangul syllables of their
Korean name ("방탄소년단": b-t-s-...), the usual way Korean groups are abbreviated.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from musicspace_llm.lexical import _deletes, edit_distance, fold
from musicspace_llm.postings import Postings

_INITIALS = (
    "kknttlmppssosssktph"  # ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ (ㅇ: silent, dropped below)
)
_VOWELS = [
    "a",
    "e",
    "ia",
    "ie",
    "o",
    "e",
    "io",
    "ie",
    "o",
    "ua",
    "ue",
    "ue",
    "io",
    "u",
    "uo",
    "ue",
    "ui",
    "iu",
    "",
    "ui",
    "i",
]  # ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ (ㅡ is Korean's filler vowel: dropped)
_FINALS = [
    "",
    "k",
    "k",
    "k",
    "n",
    "n",
    "n",
    "t",
    "l",
    "k",
    "m",
    "l",
    "l",
    "l",
    "p",
    "l",
    "m",
    "p",
    "p",
    "s",
    "s",
    "n",
    "s",
    "s",
    "k",
    "t",
    "p",
    "h",
]  # (none)ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ
_REVISED_INITIALS = [
    "g",
    "kk",
    "n",
    "d",
    "tt",
    "r",
    "m",
    "b",
    "pp",
    "s",
    "ss",
    "",
    "j",
    "jj",
    "ch",
    "k",
    "t",
    "p",
    "h",
]  # for acronyms: Revised Romanization's first letter
# Korean hears s, sh, j, z and ch as ㅅ/ㅈ/ㅊ, which English names mix freely: one class "s".
_CONSONANTS = set("kntlmpsh")
GUESS_CACHE = 8192  # Hangul texts whose guess is kept per snapshot
# Endings Korean attaches to a name ("퀸의", "드레이크랑"): tried with and without.
_PARTICLES = (
    "으로",
    "이랑",
    "처럼",
    "같은",
    "의",
    "를",
    "을",
    "이",
    "가",
    "은",
    "는",
    "랑",
    "와",
    "과",
    "도",
    "로",
)
# English spelling -> sound class, longest first; vowels stay (a e i o u), y/w act as vowels.
_LATIN_RULES = [
    ("tch", "s"),
    ("sch", "s"),
    ("ght", "t"),
    ("ph", "p"),
    ("sh", "s"),
    ("ch", "s"),
    ("th", "s"),
    ("ck", "k"),
    ("qu", "ku"),
    ("ng", "n"),
    ("wr", "l"),
    ("x", "ks"),
    ("q", "k"),
    ("ee", "i"),
    ("oo", "u"),
    ("ea", "i"),
    ("ou", "au"),
    ("ow", "au"),
]
_SAYS_NAME = {"a": "ei", "i": "ai"}
_DIGITS = dict(
    zip(
        "0 1 2 3 4 5 6 7 8 9 10".split(),
        "zero one two three four five six seven eight nine ten".split(),
        strict=True,
    )
)
_LATIN_LETTERS = {
    "b": "p",
    "p": "p",
    "f": "p",
    "v": "p",
    "d": "t",
    "t": "t",
    "g": "k",
    "k": "k",
    "c": "k",
    "s": "s",
    "z": "s",
    "j": "s",
    "l": "l",
    "r": "l",
    "m": "m",
    "n": "n",
    "h": "h",
    "a": "a",
    "e": "e",
    "i": "i",
    "o": "o",
    "u": "u",
    "y": "i",
    "w": "u",
}


def is_hangul(text: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in text)


def hangul_key(text: str) -> str:
    """Sound key of Hangul text: 드레이크 -> "tleik", 퀸 -> "kuin"; a digit is read in English,
    as Korean writes a name's number ("마룬 5" is Maroon 5, 마룬 파이브)."""
    out = []
    for ch in text:
        code = ord(ch) - 0xAC00
        if ch in _DIGITS:
            out.append(latin_key(ch))
        if not 0 <= code < 11172:
            continue
        initial, vowel, final = code // 588, (code % 588) // 28, code % 28
        out.append((_INITIALS[initial] if initial != 11 else "") + _VOWELS[vowel] + _FINALS[final])
    return _collapse("".join(out))


_NUMBER = re.compile(r"\d+")
_NOT_LATIN = re.compile(r"[^a-z]")
_SOFT_C = re.compile(r"c(?=[eiy])")
_SOFT_G = re.compile(r"g(?=[eiy])")
_SAYS_ITS_NAME = re.compile(r"(?<![aeiou])([ai])(?=[bdfklmnpstvz]e$)")
_SILENT_E = re.compile(r"(?<=[^aeiouy])e$")
_SILENT_R = re.compile(r"r+(?=[^aeiouy]|$)")
_SILENT_H = re.compile(r"h(?=[^aeiou]|$)")
_REPEATS = re.compile(r"(.)\1+")
_LEADING_THE = re.compile(r"^the\s+", re.I)


def latin_key(name: str) -> str:
    """Sound key of a Latin name as Korean spelling hears it: Drake -> "tlak", Queen -> "kuin"."""
    # "Maroon 5" is 마룬 파이브, "2Pac" 투팍: a number is said in English.
    text = _NUMBER.sub(lambda m: " " + _DIGITS.get(m.group(0), m.group(0)) + " ", fold(name))
    text = _NOT_LATIN.sub("", text)
    text = _SOFT_C.sub("s", text)
    text = _SOFT_G.sub("s", text)
    # A vowel before consonant + silent e says its name: Drake is 드레이크, Mike 마이크.
    text = _SAYS_ITS_NAME.sub(lambda m: _SAYS_NAME[m.group(1)], text)
    text = _SILENT_E.sub("", text)  # silent final e (Drake, Malone)
    if text.startswith("kn"):
        text = text[1:]
    text = _SILENT_R.sub("", text)  # r before a consonant or at the end is silent
    for spelled, sound in _LATIN_RULES:
        text = text.replace(spelled, sound)
    text = "".join(_LATIN_LETTERS.get(ch, "") for ch in text)
    text = _SILENT_H.sub("", text)
    return _collapse(text)


def _collapse(key: str) -> str:
    return _REPEATS.sub(r"\1", key)


def skeleton(key: str) -> str:
    return "".join(ch for ch in key if ch in _CONSONANTS)


def shape(key: str) -> str:
    """Consonants with each vowel run as one "a": English "a" in Drake is Korean 에이."""
    return re.sub(r"[aeiou]+", "a", key)


@dataclass(frozen=True)
class ArtistGuess:
    artist: str
    confidence: float  # 0..1
    spelled: str  # the Hangul that was read as this name


class ArtistNames:
    """Every artist of the index under its sound key, its skeleton and (for acronyms) its letters."""

    def __init__(self, artists: Iterable[str]) -> None:
        counts: dict[str, int] = defaultdict(int)
        for artist in artists:
            if artist:
                counts[artist] += 1
        self.counts = dict(counts)
        # One entry per (artist, sound key): its artist, key, skeleton and shape, as four lists;
        # each skeleton and its one-letter deletions name the entries under them.
        self._artists: list[str] = []
        self._keys: list[str] = []
        self._bones: list[str] = []
        self._shapes: list[str] = []
        by_skeleton: dict[str, list[int]] = defaultdict(list)
        acronyms: dict[str, list[str]] = defaultdict(list)
        for artist in self.counts:
            keys = {latin_key(artist)}
            bare = _LEADING_THE.sub("", artist)
            if bare != artist:
                keys.add(latin_key(bare))  # "The Weeknd" is written 위켄드
            keys = {k for k in keys if len(skeleton(k)) >= 2}
            if not keys:
                continue
            for key in sorted(keys):
                entry, bone = len(self._keys), skeleton(key)
                self._artists.append(artist)
                self._keys.append(key)
                self._bones.append(bone)
                self._shapes.append(shape(key))
                for variant in {bone, *_deletes(bone)}:
                    if len(variant) >= 2:
                        by_skeleton[variant].append(entry)
            letters = re.sub(r"[^A-Za-z]", "", artist)
            if 2 <= len(letters) <= 5 and letters.isupper() and " " not in artist.strip():
                acronyms[letters.lower()].append(artist)
        self._by_skeleton = Postings(by_skeleton)
        self._acronyms = dict(acronyms)
        # Answers by Hangul text: the same words come back query after query ("잔잔한",
        # "신스팝"), and each is a few hundred edit distances in Python.
        self._guessed: dict[str, ArtistGuess | None] = {}

    def guess(self, hangul: str) -> ArtistGuess | None:
        """The catalog artist this Hangul most likely names, or None."""
        if hangul in self._guessed:
            return self._guessed[hangul]
        best = self._guess(hangul)
        if len(self._guessed) >= GUESS_CACHE:
            self._guessed.clear()  # rarely reached: a day's distinct Korean words fit
        self._guessed[hangul] = best
        return best

    def _guess(self, hangul: str) -> ArtistGuess | None:
        best: ArtistGuess | None = None
        for spelled in _without_particles(hangul.replace(" ", "")):
            key = hangul_key(spelled)
            bone, form = skeleton(key), shape(key)
            if len(bone) < 2:
                continue
            entries: set[int] = set()
            for variant in {bone, *_deletes(bone)}:
                entries.update(self._by_skeleton.get(variant))
            # A key whose skeleton is within one edit of this one shares a variant with it, so
            # every key that could pass the tests below is among these entries.
            for entry in sorted(entries):
                name_key, name_bone = self._keys[entry], self._bones[entry]
                if abs(len(name_key) - len(key)) > len(key) / 3:
                    continue  # cheap: the full-key distance below could not pass
                bones = 0 if bone == name_bone else edit_distance(bone, name_bone, 1)
                if bones > (1 if len(bone) >= 4 else 0):
                    continue
                if edit_distance(form, self._shapes[entry], 1) > 1:
                    continue
                artist = self._artists[entry]
                distance = edit_distance(key, name_key, len(key) // 3)
                if distance > len(key) / 3 or not (distance == 0 or self.counts[artist] >= 5):
                    continue
                confidence = 1.0 - 0.1 * bones - 0.5 * distance / len(key)
                if best is None or (confidence, self.counts[artist]) > (
                    best.confidence,
                    self.counts[best.artist],
                ):
                    best = ArtistGuess(artist, confidence, spelled)
            initials = _revised_initials(spelled)
            for letters, artists in self._acronyms.items():
                if (
                    len(initials) > len(letters)
                    and initials.startswith(letters)
                    and (best is None or best.confidence < 0.7)
                ):
                    artist = max(artists, key=lambda a: self.counts[a])
                    best = ArtistGuess(artist, 0.7, spelled)
        return best


def _without_particles(word: str) -> list[str]:
    out = [word]
    for particle in _PARTICLES:
        if word.endswith(particle) and len(word) > len(particle) + 1:
            out.append(word[: -len(particle)])
    return out


def _revised_initials(hangul: str) -> str:
    """First romanized letter of each syllable: 방탄소년단 -> "btsnd"."""
    out = []
    for ch in hangul:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            letters = _REVISED_INITIALS[code // 588]
            out.append(letters[:1] if letters else "")
    return "".join(out)
