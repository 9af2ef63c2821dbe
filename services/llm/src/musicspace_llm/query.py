"""One query, start to finish: what it asks for, which tracks rank first, and why.

1. `prepare` (text only, before embedding): numbers and eras become hard filters
   (numbers.py) and "like <artist>" is set aside; the rest is what gets embedded and read.
2. `rank`:
   - concepts (genres, moods, eras) from the lexicon and the embedder (understanding.py);
   - the words the concepts do not explain are names: the lexical index (lexical.py) scores
     how much of the query each track's title / artist / album holds; Hangul words are read
     as artist names by sound (crossscript.py). A track holding (nearly) the whole query is a
     known item and outranks every track that only fits the description; a whole artist name
     typed outranks a title that merely contains it;
   - "like <artist>": that artist's subgenre mix and sound (profile.py) lift similar tracks,
     and the artist's own tracks are left out (they were not asked for);
   - hard filters cut; when fewer tracks pass than asked for, the nearest others follow,
     marked as outside the filters.
When nothing in the query matched anything (an artist the catalog does not have), the
results are the nearest by description and say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from musicspace_llm.crossscript import is_hangul
from musicspace_llm.gemini_query import Reading
from musicspace_llm.index import TrackIndex
from musicspace_llm.lexical import core_title, tokens
from musicspace_llm.numbers import Constraints, parse_constraints
from musicspace_llm.profile import W_FEATURES as PROFILE_W_FEATURES
from musicspace_llm.profile import W_SUBGENRE as PROFILE_W_SUBGENRE
from musicspace_llm.profile import build_profile, profile_bonus
from musicspace_llm.search import Match, SearchFilters, Term, top_matches
from musicspace_llm.understanding import FILLER, QueryIntent, QueryUnderstanding

# A track holding the whole query outranks any description match: the structured score
# (subgenre 1 + genre 0.5 + features 0.6 + era 0.3 + document 0.35 + popularity 0.05) tops
# out below this.
W_NAMED = 3.0
NAMED_FLOOR = 0.7  # coverage below this is a coincidence of words, not a name
ARTIST_FLOOR = 0.3  # coverage from which a whole artist name typed lifts the artist's tracks
NEAR_NAME_COST = 0.02  # coverage lost per edit by a name typed with a typo (still a name)
W_TITLE_WHOLE = 0.1  # the whole title typed ("Song" of "Song - Remix")
W_TITLE_EXACT = 0.1  # ... suffix included, so the original comes before its remixes
W_ARTIST_WHOLE = 0.25  # the whole artist name typed ("songs by Queen": Queen, not "Dancing Queen")
READING_WEIGHT = 0.9  # a concept Gemini read, where the offline reading found none of its kind
W_ARTIST_ONLY = 0.5  # a track by an artist typed in full, whatever else the query says
W_SIMILAR = 1.5  # how far "like <artist>" lifts tracks with that artist's subgenres and sound
W_SIMILAR_TEXT = 0.5  # ... and tracks whose documents read like that artist's
# Words that ask for something (or join words) rather than name it (English, Korean, Spanish).
REQUEST_WORDS = frozenset(
    """songs song music tracks track tunes by play me some the a an of from hits best top list
    playlist playlists listen to for please give want i my all greatest popular new latest
    but and or with in on than over under more less tempo bpm 템포
    노래 노래들 음악 곡 틀어줘 들려줘 추천 추천해줘 모음 플레이리스트 히트곡 명곡 찾아줘 줘 좀 듣고 싶어
    canciones cancion canción musica música de del los las el la temas exitos éxitos pon ponme
    escuchar mejores""".split()
)
KOREAN_FILLER = frozenset(w for w in FILLER if is_hangul(w))
_LIKE = re.compile(
    r"(?:(?<![\w-])(?:sounds?\s+like|similar\s+to|in\s+the\s+style\s+of|like|parecid[oa]s?\s+a|como)\s+)"
    r"(?P<name>.+?)(?=\s+(?:but|with|and|for|from|pero|con|y|para)\b|[,.;!?]|$)",
    re.I,
)
_KO_LIKE = re.compile(
    r"(?P<name>\S+(?:\s+\S+)?)\s*(?:같은|스타일|랑 비슷한|와 비슷한|과 비슷한|풍의|느낌)"
)


@dataclass
class Prepared:
    query: str
    text: str  # the query without its numbers and its "like <artist>" ("" when nothing is left)
    constraints: Constraints
    similar: str | None = None  # the words after "like", when they name a catalog artist
    similar_artist: str | None = None
    # Some track holds every word: a name, whose word spans need no embedding (what they
    # resemble would be dropped for the name anyway). Saves most of a known item's embedding.
    whole_name: bool = False


def prepare(query: str, index: TrackIndex) -> Prepared:
    """Read the hard filters and "like <artist>"; what remains is embedded and understood."""
    constraints = parse_constraints(query)
    text = constraints.rest
    similar = artist = None
    match = _LIKE.search(text) or _KO_LIKE.search(text)
    if match and match.group("name").strip() and not _like_in_a_name(index, text, match):
        artist = similar_artist(index, match.group("name"))
        if artist is not None:  # "songs like rain" names no artist: the words stay
            similar = match.group("name").strip()
            text = " ".join((text[: match.start()] + " " + text[match.end() :]).split())
    words = [w for w in tokens(text) if w not in REQUEST_WORDS]
    whole_name = index.lexical.holds_all(words)
    return Prepared(query, text, constraints, similar, artist, whole_name)


def _like_in_a_name(index: TrackIndex, text: str, like: re.Match[str]) -> bool:
    """ "i think she like me rick ross": the "like" is a word of the title typed, not a
    comparison; so when words come before it and some track holds the whole text."""
    before = [w for w in tokens(text[: like.start()]) if w not in REQUEST_WORDS]
    words = [w for w in tokens(text) if w not in REQUEST_WORDS]
    return bool(before) and index.lexical.holds_all(words)


def embed_texts(understanding: QueryUnderstanding, prepared: Prepared) -> list[str]:
    """What to embed: the query's remaining text (or the whole query when nothing remains) and,
    unless the text is a name, its word spans."""
    text = prepared.text or prepared.query
    return [text.strip()] if prepared.whole_name else understanding.query_texts(text)


@dataclass
class Named:
    """Tracks the query names: their score (no other track has one) and what each matched."""

    rows: np.ndarray  # ascending
    score: np.ndarray  # per row of `rows`, > 0
    words: str  # the query words read as names
    title_whole: frozenset[int] = frozenset()  # tracks whose whole title was typed
    artist_whole: frozenset[int] = frozenset()  # ... whose whole artist name was typed (or read)
    artist: str | None = None  # an artist the query names outright (or in Hangul)
    hangul: dict[str, str] = field(default_factory=dict)  # Hangul words -> artist read

    def best(self) -> float:
        return float(self.score.max(initial=0.0))

    def holds(self, row: int) -> bool:
        at = int(np.searchsorted(self.rows, row))
        return at < len(self.rows) and int(self.rows[at]) == row


def _open_words(prepared: Prepared, intent: QueryIntent) -> list[str]:
    """Query words that are neither a request word nor part of a concept the lexicon named."""
    understood = {w for words in intent.literal for w in tokens(words)}

    def explained(word: str) -> bool:
        # Korean attaches particles to the word the lexicon knows ("발라드를" is "발라드").
        return word in understood or (
            is_hangul(word) and any(word.startswith(u) for u in understood)
        )

    return [w for w in tokens(prepared.text) if w not in REQUEST_WORDS and not explained(w)]


def named_scores(index: TrackIndex, prepared: Prepared, intent: QueryIntent) -> Named | None:
    """How strongly each track is what the query names, or None when the query names nothing."""
    open_words = _open_words(prepared, intent)
    if not open_words:
        return None
    words = tokens(prepared.text)
    weights = [0.0 if w in REQUEST_WORDS else 1.0 for w in words]
    hangul: dict[str, str] = {}
    # Korean words that only ask ("듣는", "때") are never a name: not worth reading by sound.
    run = [w for w in open_words if is_hangul(w) and w not in KOREAN_FILLER]
    if run:  # a number beside the Hangul is part of the name ("마룬 5")
        run = [w for w in open_words if w in run or w.isdigit()]
    if run:
        guess = index.artist_names.guess(" ".join(run))
        if guess is None and len(run) > 1:
            guesses = [index.artist_names.guess(w) for w in run]
            guess = next((g for g in guesses if g is not None), None)
        if guess is not None:
            # The Hangul words stand for the artist's name: match those words instead.
            spelled = [w for w in run if w in guess.spelled or guess.spelled in w] or run
            hangul = {" ".join(spelled): guess.artist}
            name = tokens(guess.artist)
            keep = [k for k, w in enumerate(words) if w not in spelled]
            words = [words[k] for k in keep] + name
            weights = [weights[k] for k in keep] + [guess.confidence] * len(name)
    match = index.lexical.match(words, weights, floor=ARTIST_FLOOR)
    if not hangul and match.best() < 1.0:
        # No track holds every word: a typo may have made another real word ("Hoe with You").
        near = index.lexical.near_names(words)
        match = match.add_near(near, 1.0 - NEAR_NAME_COST * near.distances)
    # Scored only where the query is (nearly) the track's name: a few tracks, not the catalog.
    # (Positions in match.rows.)
    named = np.flatnonzero(match.coverage > NAMED_FLOOR)
    strength = np.clip((match.coverage[named] - NAMED_FLOOR) / (1.0 - NAMED_FLOOR), 0.0, 1.0)
    score = np.zeros(len(match.rows))
    score[named] = (
        W_NAMED
        * strength
        * (
            1.0
            + W_TITLE_WHOLE * match.title_complete[named]
            + W_TITLE_EXACT * match.title_exact[named]
            + W_ARTIST_WHOLE * match.artist_complete[named]
        )
    )
    # The artist's other tracks follow the one the query names ("acdc highway to hell"); an
    # artist whose name is a small part of the query ("Like" in "piano-like") does not.
    others = np.flatnonzero(
        match.artist_complete & (match.coverage <= NAMED_FLOOR) & (match.coverage >= ARTIST_FLOOR)
    )
    score[others] += W_ARTIST_ONLY
    artist = None
    whole = match.rows[named[match.artist_complete[named] & (strength >= 1.0)]]
    if len(whole):
        names = {index.frame.artists[r] for r in whole}
        artist = max(names, key=lambda a: index.artist_names.counts.get(a, 0))
    scored = score > 0
    return Named(
        match.rows[scored],
        score[scored],
        " ".join(open_words),
        title_whole=frozenset(match.rows[scored & match.title_complete].tolist()),
        artist_whole=frozenset(match.rows[scored & match.artist_complete].tolist()),
        artist=artist,
        hangul=hangul,
    )


def similar_artist(index: TrackIndex, phrase: str) -> str | None:
    """The catalog artist a "like ..." phrase names (typed in Latin or in Hangul)."""
    words = [w for w in tokens(phrase) if w not in REQUEST_WORDS]
    if not words:
        return None
    if all(is_hangul(w) for w in words):
        guess = index.artist_names.guess(" ".join(words))
        return guess.artist if guess else None
    match = index.lexical.match(words, floor=0.99)
    rows = match.rows[match.artist_complete & (match.coverage >= 0.99)]
    if not len(rows):
        return None
    names = {index.frame.artists[r] for r in rows}
    return max(names, key=lambda a: index.artist_names.counts.get(a, 0))


LIFT_CACHE_BYTES = 64 * 2**20  # the lifts of recent "like <artist>" queries, per snapshot


@dataclass(frozen=True)
class Lift:
    """What "like <artist>" adds: per track, the artist's subgenre mix and sound; and the
    cosine with the centroid of the artist's documents, weighed by W_SIMILAR_TEXT, which the
    ranking computes only for the tracks it can lift into the top (search.Term)."""

    sound: np.ndarray  # per track, read only
    centroid: Term

    @property
    def nbytes(self) -> int:
        return self.sound.nbytes + self.centroid.vector.nbytes


def like_artist(index: TrackIndex, artist: str) -> Lift:
    """The lift of "like <artist>" (kept per snapshot for the artists asked about last, as many
    as LIFT_CACHE_BYTES holds: a pass over every track's features each)."""
    lifts = index.similar_lifts
    lift = lifts.get(artist)
    if lift is None:
        lift = _like_artist(index, artist)
        lift.sound.flags.writeable = False
        while lifts and (len(lifts) + 1) * lift.nbytes > LIFT_CACHE_BYTES:
            lifts.pop(next(iter(lifts), None), None)  # the oldest first
        lifts[artist] = lift
    return lift


def _like_artist(index: TrackIndex, artist: str) -> Lift:
    rows = index.artist_rows(artist)
    profile = build_profile(index, [index.frame.track_ids[i] for i in rows])
    sound = W_SIMILAR * profile_bonus(index, profile) / (PROFILE_W_SUBGENRE + PROFILE_W_FEATURES)
    # Tracks whose documents read like the artist's own (their centroid).
    centroid = index.vectors[rows].mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-9)
    return Lift(sound, Term(centroid, W_SIMILAR_TEXT))


@dataclass
class Ranked:
    intent: QueryIntent
    matches: list[Match]


def _merge_filters(filters: SearchFilters | None, intent: QueryIntent) -> SearchFilters | None:
    if not intent.ranges and intent.years is None:
        return filters
    merged = SearchFilters(
        genres=list(filters.genres) if filters else [],
        subgenres=list(filters.subgenres) if filters else [],
        ranges=dict(filters.ranges) if filters else {},
        years=filters.years if filters else None,
    )
    for name, (low, high) in intent.ranges.items():
        old_low, old_high = merged.ranges.get(name, (None, None))
        merged.ranges[name] = (
            max(v for v in (low, old_low) if v is not None)
            if low is not None or old_low is not None
            else None,
            min(v for v in (high, old_high) if v is not None)
            if high is not None or old_high is not None
            else None,
        )
    if intent.years is not None:
        low, high = intent.years
        if merged.years is not None:
            low, high = max(low, merged.years[0]), min(high, merged.years[1])
        merged.years = (low, high)
    return merged


def _read(
    understanding: QueryUnderstanding, prepared: Prepared, vectors: np.ndarray
) -> QueryIntent:
    """Concepts, numbers and eras of the query (offline)."""
    intent = understanding.parse(prepared.text, vectors) if prepared.text else QueryIntent()
    intent.ranges = dict(prepared.constraints.ranges)
    intent.said.update(prepared.constraints.said)
    years = prepared.constraints.years
    named_eras = [era for era, weight in intent.eras.items() if weight >= 1.0]
    if named_eras:  # "the seventies", "90s", "80년대": a named decade is a hard filter too
        low, high = min(named_eras), max(named_eras) + 9
        years = (min(low, years[0]), max(high, years[1])) if years else (low, high)
        intent.said.setdefault(
            "year", ", ".join(intent.matched.get(f"era:{e}", "") for e in named_eras)
        )
    intent.years = years
    return intent


def _fill_from_reading(intent: QueryIntent, reading: Reading) -> None:
    """Gemini's reading fills what the offline one left empty (it never overrides it)."""
    intent.parser = "gemini"
    for feature, bounds in reading.ranges.items():
        intent.ranges.setdefault(feature, bounds)
    if intent.years is None and reading.years is not None:
        intent.years = reading.years
    guessed = (
        (intent.subgenres, "subgenre", reading.subgenres),
        (intent.genres, "genre", reading.genres),
        (intent.features, "feature", reading.moods),
    )
    for table, kind, values in guessed:
        if table and kind != "feature":
            continue  # a genre read offline settles the kind
        for value in values:
            if value not in table:
                table[value] = READING_WEIGHT
                intent.matched[f"{kind}:{value}"] = "read by Gemini"


def _named_artist(index: TrackIndex, artist: str) -> Named:
    """The tracks of an artist Gemini read from the query, scored like a typed artist name."""
    rows = index.artist_rows(artist)
    return Named(
        rows,
        np.full(len(rows), W_NAMED * (1.0 + W_ARTIST_WHOLE)),
        artist,
        artist_whole=frozenset(rows.tolist()),
        artist=artist,
    )


def rank(
    index: TrackIndex,
    understanding: QueryUnderstanding,
    prepared: Prepared,
    vectors: np.ndarray,
    *,
    limit: int,
    filters: SearchFilters | None = None,
    exclude: set[str] | None = None,
    extra: np.ndarray | None = None,
    reading: Reading | None = None,
) -> Ranked:
    """The best `limit` tracks for a prepared query; `vectors` embed embed_texts(...).

    `reading` is Gemini's reading of the query when configured (gemini_query.py).
    """
    intent = _read(understanding, prepared, vectors)
    if reading is not None:
        _fill_from_reading(intent, reading)
    bonus = np.zeros(len(index)) if extra is None else np.array(extra, dtype=np.float64)
    exclude = set(exclude or ())
    similar = prepared.similar_artist
    if similar is None and reading is not None and reading.similar_to:
        similar = similar_artist(index, reading.similar_to)
    alike = None
    if similar is not None:
        lift = like_artist(index, similar)
        bonus += lift.sound
        alike = lift.centroid
        rows = index.artist_rows(similar)
        intent.similar_subgenres = {index.frame.subgenres[i] for i in rows}
        intent.similar_to = similar
        intent.said["similar"] = prepared.similar or (reading.similar_to if reading else similar)
    named = named_scores(index, prepared, intent)
    if reading is not None and reading.artist and (named is None or named.best() < W_NAMED):
        artist = similar_artist(index, reading.artist)  # a name Gemini read, if the catalog has it
        if artist is not None and artist != similar:
            named = _named_artist(index, artist)
    if named is not None:
        bonus[named.rows] += named.score
        intent.named = named.words
        intent.artist = named.artist
        intent.hangul = named.hangul
        if named.best() >= W_NAMED:
            intent.drop_guesses()  # the words were a name; what they resembled does not count
    if similar is not None and intent.artist != similar:
        # "like Drake" asks for others; "Drake and songs like Drake" asked for Drake too.
        exclude |= {index.frame.track_ids[i] for i in index.artist_rows(similar)}
    merged = _merge_filters(filters, intent)
    vector = vectors[0] if len(vectors) else None
    matches = top_matches(
        index,
        intent,
        vector,
        limit=limit,
        filters=merged,
        exclude=exclude,
        extra=bonus,
        alike=alike,
    )
    for m in matches:
        if named is not None and named.holds(m.row):
            m.matched[:0] = _named_keys(index, m.row, named)
        if intent.similar_to:
            m.matched.append(f"similar:{intent.similar_to}")
        m.matched.extend(_filter_keys(intent))
    if merged is not None and len(matches) < limit and (intent.ranges or intent.years):
        # Fewer tracks pass the filters read from the query than asked for: the nearest
        # others follow, marked as such (the request's own filters stay hard).
        taken = exclude | {index.frame.track_ids[m.row] for m in matches}
        for m in top_matches(
            index,
            intent,
            vector,
            limit=limit - len(matches),
            filters=filters,
            exclude=taken,
            extra=bonus,
            alike=alike,
        ):
            m.closest = True
            matches.append(m)
    for m in matches:
        m.closest = m.closest or not m.matched  # matches nothing of the query: only the nearest
    return Ranked(intent, matches)


def _named_keys(index: TrackIndex, row: int, named: Named) -> list[str]:
    """What of the track the query typed: its artist, its title, or some of its words."""
    keys = []
    if row in named.artist_whole:
        keys.append(f"artist:{index.frame.artists[row]}")
    if row in named.title_whole:
        keys.append(f"title:{core_title(index.frame.titles[row])}")
    return keys or [f"name:{named.words}"]


def _filter_keys(intent: QueryIntent) -> list[str]:
    keys = [f"range:{name}" for name in intent.ranges]
    if intent.years is not None:
        keys.append("years")
    return keys
