"""The lexical index: which tracks' titles, artists and albums contain the words a query typed.

This is what finds known items ("Solsbury Hill", "russ pull the trigger", "Lovign Is Easy Rex
Orange County"): an IDF-weighted field match in the spirit of BM25F over three short fields,
tolerant of what people type into a search box:
- case, accents and punctuation fold away ("Reggaetón" = "reggaeton", "P!nk" = "pink",
  "m.A.A.d city" = "m a a d city" = "maad city", "A$AP" = "asap");
- a word the catalog does not know is matched to catalog words one edit away (a letter added,
  dropped, changed or two letters swapped; two edits for words of eight letters or more),
  found through a symmetric-delete table, at a discount;
- a typo that makes another real word ("Hoe with You" for "Home with You", "En Tus lanes")
  is not caught word by word: when no track holds every word, `near_names` compares the
  typed text whole with the titles (and "title artist", "artist title") of the tracks that
  hold all the words but one, within one or two edits;
- the result is a coverage per track (the share of the query's IDF mass that the track's fields
  contain) plus whether the track's whole title / whole artist name was typed, which the ranker
  turns into a score (search.py). Term frequency and field length barely matter for fields this
  short, so they are left out; IDF is BM25's.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from scipy import sparse

from musicspace_llm.postings import Postings

# Characters people type inside a name for a letter ("P!nk", "A$AP", "Ke$ha"), and ones that
# join a word's parts ("m.A.A.d", "don't") rather than separate words.
_INSIDE_LETTER = re.compile(r"(?<=[^\W_])[$!@](?=[^\W_])")
_LETTER_FOR = {"$": "s", "!": "i", "@": "a"}
_JOINERS = str.maketrans("", "", ".'’`*")
_SEPARATORS = re.compile(r"[^\w\s]|_")
_WORD = re.compile(r"\w+")
# The same three steps for ASCII text in one pass: joiners go, "&" is " and ", every other
# character but letters, digits and whitespace separates words.
_ASCII_FOLD = {
    code: "" if ch in ".'`*" else " and " if ch == "&" else " "
    for code, ch in ((code, chr(code)) for code in range(128))
    if not (ch.isalnum() or ch.isspace())
}
_COMPOUND = re.compile(r"\w+(?:[-/]\w+)+")
FIELD_WEIGHTS = {"title": 1.0, "artist": 1.0, "album": 0.6}
TYPO_DISCOUNT = 0.8
NEAR_NAME_CANDIDATES = 200  # texts compared letter by letter per query, at most


def fold(text: str) -> str:
    """Lower case, no accents, no punctuation inside words; words separated by single spaces."""
    text = text or ""
    if not text.isascii():  # (ASCII is its own NFKD: most names skip both passes)
        # Accents go; NFC then puts Hangul syllables (which NFKD split into letters) back.
        text = unicodedata.normalize(
            "NFC",
            "".join(
                ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
            ),
        )
    text = text.lower()
    if "$" in text or "!" in text or "@" in text:
        text = _INSIDE_LETTER.sub(lambda m: _LETTER_FOR[m.group(0)], text)
    if text.isascii():
        return " ".join(text.translate(_ASCII_FOLD).split())
    text = text.translate(_JOINERS).replace("&", " and ")
    return " ".join(_SEPARATORS.sub(" ", text).split())


def tokens(text: str) -> list[str]:
    """Folded words; runs of single letters join into one ("m a a d" -> "maad", "r e m" -> "rem")."""
    out: list[str] = []
    run: list[str] = []
    for word in [*_WORD.findall(fold(text)), ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if run:
            out.extend(["".join(run)] if len(run) > 1 else run)
            run = []
        if word:
            out.append(word)
    return out


def core_title(title: str) -> str:
    """The title without its version suffix: "Song - Acoustic" / "Song (feat. X)" -> "Song"."""
    return re.split(r"\s+-\s+|\s*[(\[]", title or "", maxsplit=1)[0] or (title or "")


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (adjacent swaps count 1), or limit + 1 when above limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


@dataclass
class LexicalMatch:
    """One query's match, for the tracks holding some word of the query that weighs (every
    other track has coverage 0, and no flag that matters without it): arrays in the order of
    `rows`."""

    rows: np.ndarray  # the tracks holding a weighing word in some field, ascending
    coverage: np.ndarray  # share of the query's IDF mass found in the track's fields, 0..1
    title_complete: np.ndarray  # the whole core title was typed ("Song" of "Song - Remix")
    title_exact: np.ndarray  # the whole title, suffix included, was typed
    artist_complete: np.ndarray  # the whole artist name was typed
    words: list[str]  # the query words that matched some track (for reasons)

    def best(self) -> float:
        """The highest coverage of any track (0 when none holds a word)."""
        return float(self.coverage.max(initial=0.0))

    def add_near(self, near: NearNames, coverage: np.ndarray) -> LexicalMatch:
        """This match with names typed with a typo counted as typed whole, at `coverage`."""
        # near.rows come closest first, not ascending: each is looked up in self.rows.
        at = np.searchsorted(self.rows, near.rows)
        held = (
            self.rows[np.minimum(at, len(self.rows) - 1)] == near.rows
            if len(self.rows)
            else (np.zeros(len(near.rows), dtype=bool))
        )
        rows = np.union1d(self.rows, near.rows[~held]) if not held.all() else self.rows
        at, near_at = np.searchsorted(rows, self.rows), np.searchsorted(rows, near.rows)
        out = LexicalMatch(rows, *(np.zeros(len(rows), dtype=a.dtype) for a in self._arrays()), [])
        for mine, theirs in zip(out._arrays(), self._arrays(), strict=True):
            mine[at] = theirs
        out.coverage[near_at] = np.maximum(out.coverage[near_at], coverage)
        out.title_complete[near_at] = True
        out.artist_complete[near_at[near.with_artist]] = True
        out.words = self.words
        return out

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.coverage, self.title_complete, self.title_exact, self.artist_complete


@dataclass
class NearNames:
    """Tracks whose name was typed with a typo (LexicalIndex.near_names)."""

    rows: np.ndarray
    distances: np.ndarray  # edits between the typed text and the name
    with_artist: np.ndarray  # the artist's name was part of what was typed

    @classmethod
    def none(cls) -> NearNames:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=bool))


class LexicalIndex:
    """Inverted index of folded title / artist / album words, with IDF and a typo table."""

    def __init__(self, titles: Sequence[str], artists: Sequence[str], albums: Sequence[str]):
        self.n = len(titles)
        self.vocab: dict[str, int] = {}
        # Each distinct text folded once (artists and albums repeat; most core titles are the
        # title): its words in order, and its word ids (vocab in order of first use).
        entry_of: dict[str, int] = {}
        words_of: list[list[str]] = []  # by entry
        word_ids: list[list[int]] = []
        cores = [core_title(t) for t in titles]  # "core" only decides if a title was typed whole
        texts_of_rows: dict[str, np.ndarray] = {}
        for name, texts in (
            ("title", titles),
            ("artist", artists),
            ("album", albums),
            ("core", cores),
        ):
            entries = []
            for text in texts:
                entry = entry_of.get(text)
                if entry is None:
                    entry = entry_of[text] = len(word_ids)
                    words_of.append(words := tokens(text))
                    word_ids.append([self.vocab.setdefault(w, len(self.vocab)) for w in set(words)])
                entries.append(entry)
            texts_of_rows[name] = np.array(entries, dtype=np.int64)
        postings = {
            name: _rows_and_words(entries, word_ids) for name, entries in texts_of_rows.items()
        }
        # Column-sliced (CSC): a query reads the tracks of a few words, each list ascending.
        self.fields = {
            name: sparse.csc_matrix(
                (np.ones(len(rows), dtype=np.float32), (rows, cols)),
                shape=(self.n, len(self.vocab)),
            )
            for name, (rows, cols) in postings.items()
        }
        for matrix in self.fields.values():
            matrix.sort_indices()
        self.core = self.fields.pop("core")
        # "E-40", "Jay-Z", "AC/DC": typed joined ("e40", "jayz", "acdc") as often as apart.
        self.compounds: dict[str, list[str]] = {}
        for text in {*titles, *artists}:
            for compound in _COMPOUND.findall(text or ""):
                parts = tokens(compound)
                if len(parts) > 1:
                    self.compounds.setdefault("".join(parts), parts)
        df = np.asarray((sum(self.fields.values()) > 0).sum(axis=0)).ravel()
        self.idf = np.log((self.n - df + 0.5) / (df + 0.5) + 1.0)
        self.core_lengths = np.asarray(self.core.sum(axis=1)).ravel()
        self.artist_lengths = np.asarray(self.fields["artist"].sum(axis=1)).ravel()
        self.title_lengths = np.asarray(self.fields["title"].sum(axis=1)).ravel()
        typos: dict[str, list[int]] = defaultdict(list)
        for word, i in self.vocab.items():
            if len(word) >= 4 and not word.isdigit():
                for variant in {word, *_deletes(word)}:
                    typos[variant].append(i)
        self._typos = Postings(typos)
        self._words = list(self.vocab)
        # Whole folded names, for near_names: the core title and the artist of each track.
        folded = [" ".join(words) for words in words_of]
        self.core_texts = [folded[e] for e in texts_of_rows["core"].tolist()]
        self.artist_texts = [folded[e] for e in texts_of_rows["artist"].tolist()]
        self._core_len = np.fromiter(map(len, self.core_texts), np.int32, self.n)
        self._artist_len = np.fromiter(map(len, self.artist_texts), np.int32, self.n)

    def __len__(self) -> int:
        return self.n

    def idf_of(self, word: str) -> float:
        """IDF of a word (a word no track has gets the highest possible)."""
        i = self.vocab.get(word)
        return float(self.idf[i]) if i is not None else math.log(self.n + 1.5)

    def spellings(self, word: str) -> list[tuple[int, float]]:
        """Catalog words that may be what was typed: (vocab id, weight); exact first."""
        exact = self.vocab.get(word)
        if exact is not None:
            return [(exact, 1.0)]
        if len(word) < 4 or word.isdigit():
            return []
        limit = 2 if len(word) >= 8 else 1
        seen: set[int] = set()
        out = []
        for variant in {word, *_deletes(word)}:
            for i in self._typos.get(variant):
                if i not in seen:
                    seen.add(i)
                    if edit_distance(word, self._words[i], limit) <= limit:
                        out.append((i, TYPO_DISCOUNT))
        return out

    def _split_compounds(
        self, words: Sequence[str], weights: Sequence[float] | None
    ) -> tuple[list[str], list[float]]:
        """A word the catalog only has apart ("e40" for "E-40") becomes its parts."""
        out_words: list[str] = []
        out_weights: list[float] = []
        for k, word in enumerate(words):
            weight = weights[k] if weights is not None else 1.0
            parts = self.compounds.get(word) if word not in self.vocab else None
            if parts:
                out_words.extend(parts)
                out_weights.extend([weight / len(parts)] * len(parts))
            else:
                out_words.append(word)
                out_weights.append(weight)
        return out_words, out_weights

    def match(
        self, words: Sequence[str], weights: Sequence[float] | None = None, floor: float = 0.0
    ) -> LexicalMatch:
        """Coverage of `words` (query words, folded) by the tracks that may cover at least
        `floor` of them (a track holding only request words covers nothing); `weights` scale
        each word's IDF. Reads the words' posting lists, never the whole catalog: only the
        lists of the words without which no track reaches `floor` are merged (the lightest,
        most common words, whose weights add up to less, are looked up, as in MaxScore)."""
        words, weights = self._split_compounds(words, weights)
        spellings = [self.spellings(word) for word in words]
        word_weights = [self.idf_of(word) * weights[k] for k, word in enumerate(words)]
        total = sum(word_weights)
        lightest, essential = 0.0, []
        for k in sorted(range(len(words)), key=lambda k: word_weights[k]):
            if word_weights[k] and lightest + word_weights[k] < floor * total * (1 - 1e-9):
                lightest += word_weights[k]
            elif word_weights[k]:
                essential.append(k)
        rows = np.unique(
            np.concatenate(
                [np.zeros(0, dtype=np.int32)]
                + [
                    _rows(self.fields[name], vocab_id)
                    for k in essential
                    for vocab_id, _ in spellings[k]
                    for name in FIELD_WEIGHTS
                ]
            )
        )
        coverage = np.zeros(len(rows))
        for found, weight in zip(spellings, word_weights, strict=True):
            if weight == 0.0:
                continue  # a request word ("of", "the") counts for whole titles, not coverage
            best = np.zeros(len(rows))
            for vocab_id, discount in found:
                for name, field_weight in FIELD_WEIGHTS.items():
                    at = _positions(rows, _rows(self.fields[name], vocab_id))
                    best[at] = np.maximum(best[at], field_weight * discount)
            coverage += weight * best
        if total > 0:
            coverage /= total
        # Every word the query spelled, request words included, completes a title or a name.
        hits = {name: np.zeros(len(rows)) for name in ("core", "title", "artist")}
        fields = {"core": self.core, "title": self.fields["title"], "artist": self.fields["artist"]}
        for vocab_id in sorted({i for found in spellings for i, _ in found}):
            for name, matrix in fields.items():
                hits[name][_positions(rows, _rows(matrix, vocab_id))] += 1
        core, title, artist = (
            self.core_lengths[rows],
            self.title_lengths[rows],
            self.artist_lengths[rows],
        )
        return LexicalMatch(
            rows=rows.astype(np.int64),
            coverage=coverage,
            title_complete=(core > 0) & (hits["core"] >= core),
            title_exact=(title > 0) & (hits["title"] >= title),
            artist_complete=(artist > 0) & (hits["artist"] >= artist),
            words=[word for word, found in zip(words, spellings, strict=True) if found],
        )

    def near_names(self, words: Sequence[str]) -> NearNames:
        """Tracks whose core title, "title artist" or "artist title" is the typed text give or
        take one edit (two from twelve letters): the typo that made another real word. Only
        tracks holding all the typed words but one are compared, the most words first."""
        distinct = list(dict.fromkeys(words))
        typed = " ".join(words)
        if len(distinct) < 2:
            return NearNames.none()
        limit = 1 if len(typed) < 12 else 2
        ids = [self.vocab[word] for word in distinct if word in self.vocab]
        if len(ids) < len(distinct) - 1:
            return NearNames.none()
        postings = [(_rows(self.core, i), _rows(self.fields["artist"], i)) for i in ids]
        # A track holding all the words but one holds one of any two (all of them, when a word
        # is unknown): the two shortest lists give every candidate.
        postings.sort(key=lambda pair: len(pair[0]) + len(pair[1]))
        shortest = postings[: 2 if len(ids) == len(distinct) else 1]
        rows = np.unique(np.concatenate([p for pair in shortest for p in pair]))
        held = np.zeros(len(rows), dtype=np.int64)
        for core, artist in postings:
            holds = np.zeros(len(rows), dtype=bool)
            holds[_positions(rows, core)] = True
            holds[_positions(rows, artist)] = True
            held += holds
        keep = held >= len(distinct) - 1
        rows, held = rows[keep].astype(np.int64), held[keep]
        core, artist = self._core_len[rows], self._artist_len[rows]
        fits = (np.abs(core - len(typed)) <= limit) | (
            np.abs(core + 1 + artist - len(typed)) <= limit
        )
        rows, held = rows[fits], held[fits]
        rows = rows[np.argsort(-held, kind="stable")[:NEAR_NAME_CANDIDATES]]
        found, distances, with_artist = [], [], []
        for row in rows.tolist():
            title, name = self.core_texts[row], self.artist_texts[row]
            best, by = limit + 1, False
            for text, artist_typed in (
                (title, False),
                (f"{title} {name}", True),
                (f"{name} {title}", True),
            ):
                distance = edit_distance(typed, text, limit)
                if distance < best:
                    best, by = distance, artist_typed
            if best <= limit:
                found.append(row)
                distances.append(best)
                with_artist.append(by)
        return NearNames(
            np.array(found, dtype=np.int64), np.array(distances), np.array(with_artist, dtype=bool)
        )

    def holds_all(self, words: Sequence[str]) -> bool:
        """Whether some track's title or artist holds every word as typed: match(words) would
        give it coverage 1 (an album, or a word matched only through a typo, weighs less)."""
        words, _ = self._split_compounds(words, None)
        if not words:
            return False
        fields = [self.fields[name] for name, weight in FIELD_WEIGHTS.items() if weight >= 1.0]
        if any(word not in self.vocab for word in words):
            return False
        postings = [[_rows(field, self.vocab[word]) for field in fields] for word in words]
        postings.sort(key=lambda lists: sum(map(len, lists)))  # the rarest word first
        held = np.unique(np.concatenate(postings[0]))
        for lists in postings[1:]:
            holds = np.zeros(len(held), dtype=bool)
            for posting in lists:
                holds[_positions(held, posting)] = True
            held = held[holds]
            if not len(held):
                return False
        return bool(len(held))


def _rows(matrix: sparse.csc_matrix, column: int) -> np.ndarray:
    """The rows holding a word (its posting list, ascending), without building a column
    matrix."""
    return matrix.indices[matrix.indptr[column] : matrix.indptr[column + 1]]


def _rows_and_words(
    entries: np.ndarray, word_ids: list[list[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """(row, word id) of every word of every row, row i's text being word_ids[entries[i]]."""
    lengths = np.fromiter(map(len, word_ids), np.int64, len(word_ids))
    flat = np.fromiter(chain.from_iterable(word_ids), np.int64, int(lengths.sum()))
    per_row = lengths[entries]
    rows = np.repeat(np.arange(len(entries), dtype=np.int64), per_row)
    # Row i's words are flat[start_i : start_i + per_row_i], start_i its text's offset.
    starts = np.cumsum(lengths) - lengths
    within = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    return rows, flat[np.repeat(starts[entries], per_row) + within]


def _positions(rows: np.ndarray, posting: np.ndarray) -> np.ndarray:
    """Where in `rows` (ascending) the rows of `posting` (ascending) are, for those it holds;
    searching the shorter of the two in the longer."""
    if not len(rows) or not len(posting):
        return np.zeros(0, dtype=np.int64)
    if len(posting) <= len(rows):
        at = np.searchsorted(rows, posting)
        return at[rows[np.minimum(at, len(rows) - 1)] == posting]
    at = np.searchsorted(posting, rows)
    return np.flatnonzero(posting[np.minimum(at, len(posting) - 1)] == rows)
