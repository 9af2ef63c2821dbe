"""Query understanding: which genres, subgenres, audio-feature moods and eras a query asks for.

Two passes over the concept lexicon (concepts.py):
1. literal: aliases found in the query (whole words in Latin script; Korean matched without
   spaces, since particles attach to words and spacing varies). The longest match wins, so
   "latin hip hop" is not also "hip hop".
2. semantic: the query and its short word spans are embedded with the same embedder as the
   documents and compared with every concept's aliases and descriptions, so paraphrases
   ("songs to cry to", "가사 없는 음악") reach a concept the lexicon does not spell out.
Literal matches weigh 1; semantic ones weigh by similarity above a calibrated floor.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from musicspace_llm.concepts import SUBGENRE_ALSO, SUBGENRE_GENRE, Concept, all_concepts
from musicspace_llm.embeddings import Embedder

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_TOKEN = re.compile(r"[0-9a-z&'\-]+|[\uac00-\ud7a3]+")
# Words that carry no musical meaning on their own (spans made only of these are skipped).
FILLER = frozenset(
    {
        "a",
        "an",
        "the",
        "for",
        "with",
        "from",
        "to",
        "of",
        "in",
        "on",
        "and",
        "or",
        "by",
        "some",
        "my",
        "me",
        "i",
        "songs",
        "song",
        "music",
        "tracks",
        "track",
        "tunes",
        "playlist",
        "that",
        "like",
        "vibes",
        "vibe",
        "best",
        "top",
        "hits",
        "list",
        "play",
        "want",
        "listen",
        "listening",
        "good",
        "great",
        "any",
        "while",
        # Words around numbers and names, which embed close to some concept by chance
        # ("over" ~ rock, "you" ~ pop, "but" ~ rap).
        "you",
        "your",
        "over",
        "under",
        "above",
        "below",
        "than",
        "but",
        "more",
        "less",
        "released",
        "canciones",
        "canción",
        "música",
        "musica",
        "de",
        "para",
        "con",
        "los",
        "las",
        "노래",
        "음악",
        "곡",
        "노래들",
        "플레이리스트",
        "듣기",
        "듣는",
        "들을",
        "듣고",
        "좋은",
        "어울리는",
        "위한",
        "같은",
        "추천",
        "모음",
        "명곡",
        "히트곡",
        "때",
        "할",
        "하는",
        "때의",
        "틀어줘",
        "찾아줘",
        "줘",
    }
)
MAX_SPAN = 2
MAX_SPANS = 24


@dataclass(frozen=True)
class Calibration:
    """Cosine similarity -> weight: below `floor` nothing, at `full` and above weight 1."""

    floor: float
    full: float
    margin: float = 0.05  # within a kind, only concepts this close to the best one count
    # One unknown word lands near some short alias by chance ("wombat" ~ "calm"), so a
    # single-word span must be this much more similar than a phrase to count.
    single_word: float = 0.1
    cap: float = 0.85  # a semantic match never weighs as much as a named one


# Per embedder; measured on the concept phrases themselves (paraphrase vs unrelated pairs).
CALIBRATIONS = {
    "offline": Calibration(floor=0.55, full=0.85, margin=0.04),
    "gemini": Calibration(floor=0.72, full=0.86),
}


@dataclass
class QueryIntent:
    subgenres: dict[str, float] = field(default_factory=dict)
    genres: dict[str, float] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)  # "energy:high" -> weight
    eras: dict[int, float] = field(default_factory=dict)
    matched: dict[str, str] = field(default_factory=dict)  # concept key -> query words that matched
    literal: list[str] = field(default_factory=list)  # query words the lexicon named outright
    literal_keys: set[str] = field(default_factory=set)  # concepts named outright (not guessed)
    # Read by query.py: hard filters, names and "like <artist>".
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    years: tuple[int, int] | None = None
    said: dict[str, str] = field(default_factory=dict)  # "tempo" / "year" / "similar" -> words
    named: str = ""  # the query words read as a title or artist name
    artist: str | None = None  # the artist the query names
    hangul: dict[str, str] = field(default_factory=dict)  # Hangul words -> artist they spell
    similar_to: str | None = None
    similar_subgenres: set[str] = field(default_factory=set)  # the subgenres of similar_to
    parser: str = "offline"  # "gemini" when Gemini's reading was used

    @property
    def empty(self) -> bool:
        return not (self.subgenres or self.genres or self.features or self.eras)

    def drop_guesses(self) -> None:
        """Forget the concepts only the embedder suggested (the words turned out to be a name)."""
        for table, kind in (
            (self.subgenres, "subgenre"),
            (self.genres, "genre"),
            (self.features, "feature"),
        ):
            for value in list(table):
                key = f"{kind}:{value}"
                if key not in self.literal_keys:
                    table.pop(value)
                    self.matched.pop(key, None)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("‘", "'")
    return re.sub(r"[^\w&'\- ]+", " ", text)


def spans(query: str) -> list[str]:
    """Word spans of 1..3 tokens that are not only filler, in order, at most MAX_SPANS."""
    # Filler words dominate the vectors of short spans ("듣는 음악" ~ "락 음악"), so they go.
    tokens = [t for t in _TOKEN.findall(normalise(query)) if t not in FILLER]
    out: list[str] = []
    for size in range(1, MAX_SPAN + 1):
        for start in range(len(tokens) - size + 1):
            words = tokens[start : start + size]
            # A lone syllable or two-letter word embeds as noise (e.g. "때", "in").
            if size == 1 and len(words[0]) < (2 if _HANGUL.search(words[0]) else 3):
                continue
            out.append(" ".join(words))
    return list(dict.fromkeys(out))[:MAX_SPANS]


@dataclass
class _Hit:
    concept: int
    start: int
    end: int
    text: str


class QueryUnderstanding:
    """Concept lexicon plus its embeddings; parse(query, vectors) -> QueryIntent."""

    def __init__(
        self,
        concepts: list[Concept],
        phrase_vectors: np.ndarray,
        phrase_owner: np.ndarray,
        calibration: Calibration,
    ) -> None:
        self.concepts = concepts
        self.phrase_vectors = phrase_vectors
        # Stored transposed: a query's spans times this is a third of the CPU of times
        # phrase_vectors.T (BLAS packs a transposed operand on every call).
        self._phrase_columns = np.ascontiguousarray(phrase_vectors.T)
        self.phrase_owner = phrase_owner
        self.calibration = calibration
        self._starts = np.flatnonzero(np.r_[True, phrase_owner[1:] != phrase_owner[:-1]])
        self._ends = np.r_[self._starts[1:], len(phrase_owner)]
        self._positions = np.arange(len(phrase_owner))
        self._kinds = sorted({c.kind for c in concepts})
        self._kind_codes = np.array([self._kinds.index(c.kind) for c in concepts], dtype=np.int64)
        self._aliases = [(i, alias.lower()) for i, c in enumerate(concepts) for alias in c.aliases]
        self._latin = [
            (i, alias, re.compile(r"(?<![0-9a-z])" + re.escape(alias) + r"(?:s|es)?(?![0-9a-z])"))
            for i, alias in self._aliases
            if not _HANGUL.search(alias)
        ]
        self._hangul = [
            (i, alias.replace(" ", "")) for i, alias in self._aliases if _HANGUL.search(alias)
        ]

    @classmethod
    async def build(cls, embedder: Embedder) -> QueryUnderstanding:
        """Embed every alias and description once (a few hundred short texts)."""
        concepts = all_concepts()
        texts, owner = [], []
        for i, concept in enumerate(concepts):
            for text in (*concept.aliases, *concept.phrases):
                texts.append(text)
                owner.append(i)
        vectors = await embedder.embed_queries(texts)
        calibration = CALIBRATIONS.get(embedder.provider, CALIBRATIONS["offline"])
        return cls(concepts, vectors, np.array(owner), calibration)

    def query_texts(self, query: str) -> list[str]:
        """What to embed for a query: the whole query first, then its spans."""
        return [query.strip(), *spans(query)]

    def _literal(self, query: str) -> list[_Hit]:
        text = normalise(query)
        # Map positions in the text to positions in its space-free twin, so Latin and Korean
        # matches can be compared for overlap in one coordinate system.
        squashed, position = [], []
        word_starts: set[int] = set()  # flat positions where a Hangul word begins
        previous = " "
        for ch in text:
            position.append(len(squashed))
            if ch != " ":
                if not _is_hangul(previous):
                    word_starts.add(len(squashed))
                squashed.append(ch)
            previous = ch
        position.append(len(squashed))
        flat = "".join(squashed)
        hits: list[_Hit] = []
        for i, alias, pattern in self._latin:
            if alias not in text:  # the pattern holds the alias verbatim: skip the regex
                continue
            for m in pattern.finditer(text):
                hits.append(_Hit(i, position[m.start()], position[m.end()], m.group(0).strip()))
        for i, alias in self._hangul:
            start = flat.find(alias)
            while start >= 0:
                # Korean attaches particles at the end of a word, so a match may end anywhere,
                # but it must start a word: 라이브 (live) inside 드라이브 (drive) is not a hit.
                if start in word_starts:
                    hits.append(_Hit(i, start, start + len(alias), alias))
                start = flat.find(alias, start + 1)
        # Longest first; a hit inside (or overlapping) a longer accepted one is dropped, while
        # hits on exactly the same words are all kept ("slow": calm and slow tempo).
        hits.sort(key=lambda h: (-(h.end - h.start), h.start))
        accepted: list[_Hit] = []
        for hit in hits:
            clash = any(
                (a.start, a.end) != (hit.start, hit.end) and hit.start < a.end and a.start < hit.end
                for a in accepted
            )
            if not clash:
                accepted.append(hit)
        return accepted

    def parse(self, query: str, vectors: np.ndarray) -> QueryIntent:
        """Intent from the literal hits plus semantic matches of the query/span vectors."""
        intent = QueryIntent()
        weights: dict[int, float] = {}
        words: dict[int, str] = {}
        hits = self._literal(query)
        for hit in hits:
            weights[hit.concept] = 1.0
            words.setdefault(hit.concept, hit.text)
            intent.literal.append(hit.text)
            intent.literal_keys.add(self.concepts[hit.concept].key)
        # Words already understood literally must not also pull in look-alike concepts
        # (e.g. "잔잔한" is calm, not neo soul because the vectors happen to be close).
        understood = {h.text.replace(" ", "") for h in hits}

        def covered(text: str) -> bool:
            tokens = [t for t in _TOKEN.findall(normalise(text)) if t not in FILLER]
            return bool(tokens) and all(any(u in t for u in understood) for t in tokens)

        literal_genres = {
            self.concepts[i].value for i in weights if self.concepts[i].kind == "genre"
        }
        if len(literal_genres) >= 2 and not any(
            self.concepts[i].kind == "subgenre" for i in weights
        ):
            # Two named genres that one subgenre spans mean that subgenre (latin + rap -> latin hip hop).
            for i, concept in enumerate(self.concepts):
                if concept.kind == "subgenre" and literal_genres <= {
                    SUBGENRE_GENRE[concept.value],
                    *SUBGENRE_ALSO.get(concept.value, ()),
                }:
                    weights[i] = 0.8
                    words[i] = " + ".join(sorted(literal_genres))
                    intent.literal_keys.add(concept.key)
        literal_kinds = {self.concepts[i].kind for i in weights}
        # A query of request words only ("노래", "songs") asks for no concept: its vector
        # would still land near some concept by chance.
        if len(vectors) and spans(query):
            sims = vectors @ self._phrase_columns  # (texts, phrases)
            texts = self.query_texts(query)
            single = np.array(
                [i > 0 and " " not in t for i, t in enumerate(texts)]
                + [False] * (len(sims) - len(texts))
            )
            sims = sims - self.calibration.single_word * single[: len(sims), None]
            best_text = sims.argmax(axis=0)
            best = sims.max(axis=0)
            # Phrases are stored grouped by concept: reduce each group to its best phrase.
            per_concept = np.maximum.reduceat(best, self._starts)
            # ... and to the text that reached it (its first best phrase, as argmax would).
            at_best = np.where(
                best == np.repeat(per_concept, self._ends - self._starts),
                self._positions,
                len(best),
            )
            which = best_text[np.minimum.reduceat(at_best, self._starts)]
            cal = self.calibration
            # Concepts within the margin of their kind's best, over the floor: a few of all.
            kind_best = np.full(len(self._kinds), -1.0)
            np.maximum.at(kind_best, self._kind_codes, per_concept)
            # In the similarities' own precision, as a Python float against one of them is.
            bar = (kind_best[self._kind_codes] - cal.margin).astype(per_concept.dtype)
            within = per_concept >= bar
            for i in np.flatnonzero(within & (per_concept >= cal.floor)).tolist():
                sim = per_concept[i]
                concept = self.concepts[i]
                if i in weights or concept.kind == "era":
                    continue
                # A named genre/subgenre settles that kind; similarity must not add rivals.
                if concept.kind in literal_kinds and concept.kind != "feature":
                    continue
                # A named genre bounds the subgenres similarity may add ("클럽 음악" stays EDM).
                if (
                    concept.kind == "subgenre"
                    and literal_genres
                    and SUBGENRE_GENRE.get(concept.value) not in literal_genres
                ):
                    continue
                text = texts[which[i]] if which[i] < len(texts) else query
                if understood and covered(text):
                    continue
                weight = min(cal.cap, (sim - cal.floor) / (cal.full - cal.floor))
                weights[i] = max(weight, 0.05)
                words[i] = text
        self._fill(intent, weights, words)
        return intent

    def _fill(self, intent: QueryIntent, weights: dict[int, float], words: dict[int, str]) -> None:
        for i, weight in weights.items():
            concept = self.concepts[i]
            target = {
                "subgenre": intent.subgenres,
                "genre": intent.genres,
                "feature": intent.features,
            }.get(concept.kind)
            if concept.kind == "era":
                intent.eras[int(concept.value)] = weight
            elif target is not None:
                target[concept.value] = max(weight, target.get(concept.value, 0.0))
            intent.matched[concept.key] = words.get(i, "")
        # Opposite directions of one feature cancel to the stronger one.
        for feature in {k.split(":")[0] for k in intent.features}:
            high, low = (
                intent.features.get(f"{feature}:high", 0.0),
                intent.features.get(f"{feature}:low", 0.0),
            )
            if high and low:
                weaker = f"{feature}:low" if high >= low else f"{feature}:high"
                intent.features.pop(weaker)
                intent.matched.pop(f"feature:{weaker}", None)


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"
