"""What a query can ask for: genres, subgenres, audio-feature moods and eras, in English and Korean.

Each concept carries short phrases a listener would use for it. Query understanding matches
a query against these phrases twice: literally (aliases, so a named genre is never missed)
and through the embedder (so a paraphrase such as "songs to cry to" still finds "sad").
The phrases describe the catalog's 6 genres and 24 Spotify subgenres and the 9 audio
features in general music vocabulary (mood words also in Spanish, for the catalog's Latin
half); they are not tuned to any evaluation query.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Concept:
    key: str  # e.g. "subgenre:electropop", "feature:energy:high", "era:1970"
    kind: str  # subgenre | genre | feature | era
    value: str  # the subgenre/genre name, "energy:high", or the decade start year
    label: str  # how a reason names it
    aliases: tuple[str, ...]  # literal names (matched as whole words / Korean substrings)
    phrases: tuple[str, ...] = ()  # descriptions matched through the embedder only


GENRE_KO = {
    "pop": "팝",
    "rock": "록",
    "rap": "랩",
    "r&b": "알앤비",
    "edm": "EDM 일렉트로닉",
    "latin": "라틴",
}

SUBGENRE_GENRE = {
    "dance pop": "pop",
    "electropop": "pop",
    "indie poptimism": "pop",
    "post-teen pop": "pop",
    "big room": "edm",
    "electro house": "edm",
    "pop edm": "edm",
    "progressive electro house": "edm",
    "latin hip hop": "latin",
    "latin pop": "latin",
    "reggaeton": "latin",
    "tropical": "latin",
    "hip pop": "r&b",
    "neo soul": "r&b",
    "new jack swing": "r&b",
    "urban contemporary": "r&b",
    "gangster rap": "rap",
    "hip hop": "rap",
    "southern hip hop": "rap",
    "trap": "rap",
    "album rock": "rock",
    "classic rock": "rock",
    "hard rock": "rock",
    "permanent wave": "rock",
}

# Genres a subgenre also sounds like, beyond its catalog genre ("스페인어 랩" = latin + rap).
SUBGENRE_ALSO = {
    "latin hip hop": ("rap",),
    "latin pop": ("pop",),
    "hip pop": ("rap", "pop"),
    "pop edm": ("pop",),
    "electropop": ("edm",),
    "trap": (),
    "southern hip hop": (),
    "reggaeton": ("rap",),
}

_SUBGENRES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # subgenre: (aliases, descriptive phrases)
    "dance pop": (
        ("dance pop", "dance-pop", "pop dance", "댄스 팝", "댄스팝", "댄스 음악", "댄스곡"),
        (
            "catchy pop songs to dance to",
            "club-friendly mainstream pop hits",
            "춤추기 좋은 대중 팝",
        ),
    ),
    "electropop": (
        (
            "electropop",
            "electro pop",
            "electro-pop",
            "synthpop",
            "synth pop",
            "synth-pop",
            "일렉트로팝",
            "일렉트로 팝",
            "신스팝",
            "신스 팝",
            "신디팝",
        ),
        ("pop made with synthesizers", "synthesizer driven pop music", "신디사이저 팝 음악"),
    ),
    "indie poptimism": (
        (
            "indie pop",
            "indie-pop",
            "indie poptimism",
            "poptimism",
            "bedroom pop",
            "인디 팝",
            "인디팝",
        ),
        ("independent alternative pop", "dreamy lo-fi indie songs", "감성적인 인디 음악"),
    ),
    "post-teen pop": (
        ("post-teen pop", "teen pop", "boy band", "girl group pop", "틴 팝", "틴팝", "아이돌 팝"),
        ("chart pop from young pop stars", "radio hits by teen idols", "십대 아이돌 팝 스타"),
    ),
    "big room": (
        ("big room", "bigroom", "big room house", "빅룸", "빅 룸"),
        (
            "festival edm with huge drops",
            "mainstage rave anthems",
            "페스티벌 EDM 드롭",
            "페스티벌 음악",
        ),
    ),
    "electro house": (
        ("electro house", "electro-house", "일렉트로 하우스", "일렉트로하우스"),
        (
            "distorted electronic house bass",
            "club electronic house music",
            "클럽 일렉트로닉 하우스",
        ),
    ),
    "pop edm": (
        ("pop edm", "edm pop", "팝 edm", "edm 팝"),
        ("radio edm with pop vocals", "melodic electronic dance pop", "보컬이 있는 EDM 팝"),
    ),
    "progressive electro house": (
        (
            "progressive house",
            "progressive electro house",
            "progressive edm",
            "프로그레시브 하우스",
            "프로그레시브",
        ),
        (
            "melodic progressive build ups",
            "uplifting progressive edm",
            "서서히 고조되는 프로그레시브 EDM",
        ),
    ),
    "latin hip hop": (
        (
            "latin hip hop",
            "latin hip-hop",
            "latin rap",
            "latin trap",
            "spanish rap",
            "라틴 힙합",
            "라틴힙합",
            "라틴 랩",
            "라틴 트랩",
        ),
        ("rap en español", "spanish language hip hop", "스페인어 힙합"),
    ),
    "latin pop": (
        ("latin pop", "pop latino", "라틴 팝", "라틴팝"),
        ("spanish language pop songs", "romantic latin ballads", "스페인어 팝송"),
    ),
    "reggaeton": (
        ("reggaeton", "reggaetón", "perreo", "dembow", "레게톤"),
        ("puerto rican club beats", "latin urban dance party", "라틴 클럽 파티 음악"),
    ),
    "tropical": (
        (
            "tropical",
            "salsa",
            "bachata",
            "merengue",
            "cumbia",
            "트로피컬",
            "살사",
            "바차타",
            "메렝게",
            "쿰비아",
        ),
        ("caribbean latin rhythms", "tropical latin dance music", "카리브해 라틴 리듬"),
    ),
    "hip pop": (
        ("hip pop", "hip-pop", "pop rap", "힙팝", "힙 팝", "팝 랩"),
        (
            "radio friendly rap with r&b hooks",
            "mainstream rap and r&b crossover",
            "대중적인 힙합 알앤비",
        ),
    ),
    "neo soul": (
        ("neo soul", "neo-soul", "soul", "네오 소울", "네오소울", "소울"),
        ("warm soulful jazzy r&b", "smooth organic soul grooves", "따뜻한 소울풀 알앤비"),
    ),
    "new jack swing": (
        ("new jack swing", "new jack", "swingbeat", "뉴잭스윙", "뉴 잭 스윙", "뉴잭 스윙"),
        (
            "late 80s and 90s r&b with hip hop beats",
            "retro 90s r&b dance grooves",
            "90년대 알앤비 댄스",
        ),
    ),
    "urban contemporary": (
        (
            "urban contemporary",
            "contemporary r&b",
            "modern r&b",
            "어반 컨템포러리",
            "컨템포러리 알앤비",
        ),
        ("smooth modern r&b slow jams", "sensual r&b ballads", "부드러운 현대 알앤비"),
    ),
    "gangster rap": (
        (
            "gangster rap",
            "gangsta rap",
            "gangsta",
            "gangster",
            "street rap",
            "갱스터 랩",
            "갱스터랩",
            "갱스타 랩",
            "갱스타",
        ),
        ("hardcore street rap about crime", "west coast gangsta rap", "거친 거리의 랩"),
    ),
    "hip hop": (
        ("hip hop", "hip-hop", "hiphop", "boom bap", "힙합", "붐뱁"),
        ("classic rap beats and rhymes", "old school hip hop", "올드스쿨 힙합"),
    ),
    "southern hip hop": (
        (
            "southern hip hop",
            "southern rap",
            "dirty south",
            "crunk",
            "atlanta rap",
            "남부 힙합",
            "서던 힙합",
            "더티 사우스",
        ),
        (
            "rap from atlanta houston and memphis",
            "hip hop from the american south",
            "미국 남부 힙합",
        ),
    ),
    "trap": (
        ("trap", "drill", "트랩", "드릴"),
        ("rap with 808 bass and hi-hat rolls", "dark trap beats", "808 베이스 트랩 비트"),
    ),
    "album rock": (
        ("album rock", "arena rock", "aor", "앨범 록", "앨범 락", "아레나 록"),
        ("big stadium rock from the 70s and 80s", "fm radio rock", "80년대 스타디움 록"),
    ),
    "classic rock": (
        (
            "classic rock",
            "classic-rock",
            "oldies rock",
            "클래식 록",
            "클래식 락",
            "고전 록",
            "고전 락",
        ),
        ("legendary rock from the 60s and 70s", "vintage rock and roll", "60년대 70년대 록"),
    ),
    "hard rock": (
        (
            "hard rock",
            "heavy metal",
            "metal",
            "headbang",
            "headbanger",
            "headbanging",
            "하드 록",
            "하드 락",
            "하드록",
            "하드락",
            "헤비메탈",
            "메탈",
        ),
        (
            "loud rock with heavy distorted guitar riffs",
            "heavy guitar driven rock",
            "강렬한 기타 리프 록",
        ),
    ),
    "permanent wave": (
        (
            "permanent wave",
            "alternative rock",
            "alt rock",
            "new wave",
            "modern rock",
            "britpop",
            "grunge",
            "얼터너티브 록",
            "얼터너티브",
            "모던 록",
            "모던 락",
            "뉴웨이브",
            "브릿팝",
        ),
        (
            "90s alternative and britpop guitar bands",
            "indie rock guitar bands",
            "90년대 얼터너티브 밴드",
        ),
    ),
}

_GENRES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pop": (("pop", "팝", "팝송", "가요"), ("mainstream pop music", "대중 음악")),
    "rock": (
        ("rock", "rock and roll", "록", "락", "밴드 음악"),
        ("guitar band rock music", "기타 밴드 록"),
    ),
    "rap": (
        ("rap", "rapper", "rappers", "hip hop", "랩", "래퍼", "힙합"),
        ("rap and hip hop music", "랩 음악"),
    ),
    "r&b": (
        ("r&b", "rnb", "r and b", "rhythm and blues", "알앤비", "알엔비", "리듬 앤 블루스"),
        ("rhythm and blues soul music", "알앤비 음악"),
    ),
    "edm": (
        (
            "edm",
            "electronic",
            "electronic dance music",
            "house music",
            "rave",
            "일렉트로닉",
            "전자 음악",
            "이디엠",
            "클럽 음악",
        ),
        ("electronic dance music for clubs", "전자 댄스 음악"),
    ),
    "latin": (
        ("latin", "latino", "spanish", "라틴", "스페인어"),
        ("latin american music", "라틴 아메리카 음악"),
    ),
}

# Anger is loud and dark: both high energy and low valence.
_ANGRY = (
    "angry",
    "aggressive",
    "furious",
    "rage",
    "화난",
    "분노",
    "공격적인",
    "agresiva",
    "agresivo",
)

# (feature, direction): (aliases, phrases). Directions read as "the query wants this feature high/low".
_FEATURES: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("energy", "high"): (
        (
            "energetic",
            "high energy",
            "high-energy",
            "intense",
            "powerful",
            "pumping",
            "hype",
            "workout",
            "gym",
            "pump up",
            "adrenaline",
            "running",
            "신나는",
            "신난",
            "에너지",
            "에너제틱",
            "강렬한",
            "파워풀",
            "운동",
            "헬스",
            "힘이 나는",
            "달리기",
            "more energetic",
            *_ANGRY,
            "energía",
            "energia",
            "enérgica",
            "enérgicas",
            "enérgico",
            "energica",
            "gimnasio",
            "entrenar",
        ),
        ("music that pumps you up", "loud and intense", "운동할 때 듣는 강렬한 음악"),
    ),
    ("energy", "low"): (
        (
            "calm",
            "chill",
            "chilled",
            "relaxing",
            "relaxed",
            "mellow",
            "soft",
            "quiet",
            "gentle",
            "peaceful",
            "slow",
            "soothing",
            "sleep",
            "sleeping",
            "asleep",
            "bedtime",
            "lullaby",
            "lullabies",
            "잔잔한",
            "잔잔하고",
            "차분한",
            "차분하게",
            "조용한",
            "편안한",
            "느린",
            "느긋한",
            "부드러운",
            "힐링",
            "평화로운",
            "잠잘",
            "잠들",
            "자기 전",
            "수면",
            "휴식",
            "calmer",
            "tranquila",
            "tranquilas",
            "tranquilo",
            "tranquilos",
            "relajante",
            "relajantes",
            "suave",
            "suaves",
            "dormir",
        ),
        ("quiet music to relax", "soft and gentle songs", "마음이 편해지는 조용한 노래"),
    ),
    ("valence", "high"): (
        (
            "happy",
            "cheerful",
            "upbeat",
            "joyful",
            "feel good",
            "feel-good",
            "sunny",
            "positive",
            "uplifting",
            "행복한",
            "밝은",
            "경쾌한",
            "기분 좋은",
            "기분좋은",
            "즐거운",
            "명랑한",
            "상큼한",
            "happier",
            "feliz",
            "felices",
            "alegre",
            "alegres",
        ),
        ("songs that make you smile", "bright positive mood", "기분이 좋아지는 밝은 노래"),
    ),
    ("valence", "low"): (
        (
            "sad",
            "melancholy",
            "melancholic",
            "depressing",
            "gloomy",
            "heartbreak",
            "heartbroken",
            "dark",
            "moody",
            "lonely",
            "tearjerker",
            "crying",
            "cry",
            "슬픈",
            "우울한",
            "쓸쓸한",
            "이별",
            "외로운",
            "애절한",
            "어두운",
            "눈물",
            "마음이 아픈",
            "울고 싶은",
            "sadder",
            *_ANGRY,
            "triste",
            "tristes",
            "llorar",
            "melancólica",
            "melancolica",
        ),
        ("songs to cry to", "sad breakup songs", "눈물 나는 슬픈 노래"),
    ),
    ("danceability", "high"): (
        (
            "danceable",
            "groovy",
            "groove",
            "dance floor",
            "dancefloor",
            "dance",
            "dancing",
            "party",
            "춤",
            "그루비",
            "그루브",
            "댄서블",
            "파티",
            "흥겨운",
            "bailar",
            "bailable",
            "bailables",
            "fiesta",
        ),
        ("music you can dance to", "makes you move", "춤추고 싶어지는 음악"),
    ),
    ("acousticness", "high"): (
        (
            "acoustic",
            "unplugged",
            "acoustic guitar",
            "piano ballad",
            "어쿠스틱",
            "통기타",
            "언플러그드",
            "피아노",
            "acústica",
            "acústicas",
            "acústico",
            "acustica",
            "acustico",
        ),
        ("acoustic guitar and piano songs", "stripped down unplugged", "기타와 피아노 반주 노래"),
    ),
    ("instrumentalness", "high"): (
        (
            "instrumental",
            "instrumentals",
            "no vocals",
            "without vocals",
            "without lyrics",
            "no lyrics",
            "연주곡",
            "가사 없는",
            "가사없는",
            "보컬 없는",
            "보컬없는",
            "인스트루멘탈",
            "sin voz",
            "sin letra",
            "sin vocales",
            "instrumentales",
        ),
        ("music without singing", "tracks with no words", "노래 없이 연주만 있는 곡"),
    ),
    ("liveness", "high"): (
        (
            "live",
            "concert",
            "live recording",
            "live performance",
            "in concert",
            "라이브",
            "공연",
            "실황",
            "콘서트",
            "en vivo",
            "en directo",
            "concierto",
        ),
        ("recorded live in front of an audience", "concert recordings", "공연장에서 녹음한 라이브"),
    ),
    ("speechiness", "high"): (
        (
            "spoken word",
            "spoken",
            "wordy",
            "rapid fire",
            "rapid-fire",
            "fast rap",
            "fast rapping",
            "chopper",
            "빠른 랩",
            "속사포",
            "말하듯",
            "가사가 많은",
        ),
        ("lots of words and rapid rapping", "dense fast lyrics", "가사가 빠르고 많은 랩"),
    ),
    ("tempo", "high"): (
        (
            "fast",
            "faster",
            "fast tempo",
            "uptempo",
            "up-tempo",
            "high bpm",
            "빠른",
            "빠른 템포",
            "업템포",
            "rápida",
            "rápidas",
            "rápido",
            "rápidos",
            "rapida",
            "rapidas",
        ),
        ("quick tempo songs", "빠른 비트의 노래"),
    ),
    ("tempo", "low"): (
        (
            "slow",
            "slower",
            "slow tempo",
            "downtempo",
            "low bpm",
            "ballad",
            "ballads",
            "느린 템포",
            "발라드",
            "lenta",
            "lentas",
            "lento",
            "lentos",
            "balada",
            "baladas",
        ),
        ("slow tempo songs", "느린 템포의 노래"),
    ),
}

_ERAS: dict[int, tuple[str, ...]] = {
    1960: ("60s", "1960s", "sixties", "60년대", "1960년대"),
    1970: ("70s", "1970s", "seventies", "70년대", "1970년대"),
    1980: ("80s", "1980s", "eighties", "80년대", "1980년대"),
    1990: ("90s", "1990s", "nineties", "90년대", "1990년대"),
    2000: ("2000s", "00s", "noughties", "2000년대"),
    2010: ("2010s", "10s", "2010년대"),
}

FEATURE_WORDS = {
    ("energy", "high"): "energetic",
    ("energy", "low"): "calm",
    ("valence", "high"): "happy",
    ("valence", "low"): "sad",
    ("danceability", "high"): "danceable",
    ("acousticness", "high"): "acoustic",
    ("instrumentalness", "high"): "instrumental",
    ("liveness", "high"): "live",
    ("speechiness", "high"): "wordy",
    ("tempo", "high"): "fast",
    ("tempo", "low"): "slow",
}


def all_concepts() -> list[Concept]:
    """Every concept, in a fixed order (so concept embeddings line up run to run)."""
    concepts: list[Concept] = []
    for name, (aliases, phrases) in _SUBGENRES.items():
        concepts.append(Concept(f"subgenre:{name}", "subgenre", name, name, aliases, phrases))
    for name, (aliases, phrases) in _GENRES.items():
        concepts.append(Concept(f"genre:{name}", "genre", name, name, aliases, phrases))
    for (feature, direction), (aliases, phrases) in _FEATURES.items():
        label = FEATURE_WORDS[(feature, direction)]
        concepts.append(
            Concept(
                f"feature:{feature}:{direction}",
                "feature",
                f"{feature}:{direction}",
                label,
                aliases,
                phrases,
            )
        )
    for year, aliases in _ERAS.items():
        concepts.append(Concept(f"era:{year}", "era", str(year), f"{year}s", aliases))
    return concepts
