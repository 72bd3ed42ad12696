"""The 37 Oxford-IIIT Pet breeds, and the one parser that turns free text into a breed id.

Every other module should go through this one for breed names, so that the ids
(the dataset's exact spelling), display names and the mapping of model answers
to ids stay in a single place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = [
    "UNKNOWN",
    "Breed",
    "BREEDS",
    "BREED_IDS",
    "get_breed",
    "display_name",
    "species_of",
    "breed_from_filename",
    "parse_breed",
]

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Breed:
    """One Oxford-IIIT Pet class: dataset id, display name, species and alternative names."""

    id: str
    name: str
    species: str
    aliases: tuple[str, ...] = ()


# Written out in the dataset's class-id order (ids sorted case-insensitively) so that
# BREEDS[i] is class i; the tests check the order rather than this module sorting it,
# which would hide a typo in an id.  Aliases include ImageNet's label spellings because
# zero-shot / ImageNet models answer with those.
BREEDS: tuple[Breed, ...] = (
    Breed("Abyssinian", "Abyssinian", "cat", ("Aby", "Abyssinian cat")),
    Breed("american_bulldog", "American Bulldog", "dog", ("American Bull Dog",)),
    Breed(
        "american_pit_bull_terrier",
        "American Pit Bull Terrier",
        "dog",
        (
            "Pit Bull",
            "Pitbull",
            "Pit Bull Terrier",
            "APBT",
            "American Pit Bull",
            # ImageNet has no pit bull class; its nearest label is this one.
            "American Staffordshire Terrier",
            "AmStaff",
        ),
    ),
    Breed("basset_hound", "Basset Hound", "dog", ("Basset",)),
    Breed("beagle", "Beagle", "dog"),
    Breed("Bengal", "Bengal", "cat", ("Bengal cat",)),
    Breed("Birman", "Birman", "cat", ("Sacred Cat of Burma", "Birman cat")),
    Breed("Bombay", "Bombay", "cat", ("Bombay cat",)),
    Breed("boxer", "Boxer", "dog"),
    Breed("British_Shorthair", "British Shorthair", "cat", ("British Blue", "British Short Hair")),
    Breed("chihuahua", "Chihuahua", "dog"),
    Breed("Egyptian_Mau", "Egyptian Mau", "cat", ("Egyptian cat",)),
    Breed(
        "english_cocker_spaniel",
        "English Cocker Spaniel",
        "dog",
        ("Cocker Spaniel",),
    ),
    Breed("english_setter", "English Setter", "dog"),
    Breed(
        "german_shorthaired",
        "German Shorthaired Pointer",
        "dog",
        ("German Short-haired Pointer", "German Shorthair", "GSP"),
    ),
    Breed("great_pyrenees", "Great Pyrenees", "dog", ("Pyrenean Mountain Dog",)),
    Breed("havanese", "Havanese", "dog"),
    Breed("japanese_chin", "Japanese Chin", "dog", ("Japanese Spaniel",)),
    Breed("keeshond", "Keeshond", "dog", ("Keeshonden", "Wolfspitz")),
    Breed("leonberger", "Leonberger", "dog", ("Leonberg",)),
    Breed("Maine_Coon", "Maine Coon", "cat", ("Mainecoon", "Maine Coon cat")),
    Breed("miniature_pinscher", "Miniature Pinscher", "dog", ("Min Pin", "Zwergpinscher")),
    Breed("newfoundland", "Newfoundland", "dog", ("Newfie", "Newfoundland dog")),
    Breed("Persian", "Persian", "cat", ("Persian cat",)),
    Breed("pomeranian", "Pomeranian", "dog", ("Pom",)),
    Breed("pug", "Pug", "dog"),
    Breed("Ragdoll", "Ragdoll", "cat", ("Ragdoll cat",)),
    Breed("Russian_Blue", "Russian Blue", "cat", ("Russian Blue cat",)),
    Breed("saint_bernard", "Saint Bernard", "dog", ("St. Bernard", "St Bernard")),
    Breed("samoyed", "Samoyed", "dog"),
    Breed(
        "scottish_terrier",
        "Scottish Terrier",
        "dog",
        ("Scottie", "Scotty", "Scotch Terrier", "Aberdeen Terrier"),
    ),
    Breed("shiba_inu", "Shiba Inu", "dog", ("Shiba",)),
    Breed("Siamese", "Siamese", "cat", ("Siamese cat",)),
    Breed("Sphynx", "Sphynx", "cat", ("Sphynx cat", "Sphinx cat", "Hairless cat", "Canadian Hairless")),
    Breed(
        "staffordshire_bull_terrier",
        "Staffordshire Bull Terrier",
        "dog",
        ("Staffy", "Staffie", "Staffordshire Bullterrier"),
    ),
    Breed(
        "wheaten_terrier",
        "Wheaten Terrier",
        "dog",
        ("Wheaten", "Soft-Coated Wheaten Terrier", "Soft Coated Wheaten"),
    ),
    Breed("yorkshire_terrier", "Yorkshire Terrier", "dog", ("Yorkie",)),
)

BREED_IDS: tuple[str, ...] = tuple(b.id for b in BREEDS)

_BY_ID: dict[str, Breed] = {b.id: b for b in BREEDS}
_BY_LOWER_ID: dict[str, str] = {b.id.lower(): b.id for b in BREEDS}


def get_breed(breed_id: str) -> Breed:
    """Return the Breed for an exact dataset id; raise KeyError naming the bad id otherwise."""
    try:
        return _BY_ID[breed_id]
    except (KeyError, TypeError):
        pass
    hint = ""
    # The dataset mixes cases (cats capitalised), so the commonest mistake is the case.
    if isinstance(breed_id, str) and breed_id.lower() in _BY_LOWER_ID:
        hint = f"; did you mean {_BY_LOWER_ID[breed_id.lower()]!r}? (ids are case-sensitive)"
    raise KeyError(f"unknown breed id {breed_id!r}{hint}; expected one of the 37 Oxford-IIIT Pet ids")


def display_name(breed_id: str) -> str:
    """Human-readable name for a breed id; "unknown" gives "Unknown"."""
    if breed_id == UNKNOWN:
        return "Unknown"
    return get_breed(breed_id).name


def species_of(breed_id: str) -> str | None:
    """Species ("cat" or "dog") of a breed id; None for UNKNOWN, KeyError for other bad ids."""
    if breed_id == UNKNOWN:
        return None
    return get_breed(breed_id).species


# Dataset images are named "<breed id>_<number>.<ext>"; ids contain underscores, so
# the id is everything before the last "_<digits>".
_FILENAME_RE = re.compile(r"^(?P<id>.+)_(?P<n>\d+)\.(?P<ext>[A-Za-z0-9]+)$")


def breed_from_filename(filename: str) -> str | None:
    """Breed id from an Oxford-IIIT file name or path ("Abyssinian_101.jpg"), else None."""
    base = re.split(r"[\\/]", str(filename))[-1]
    m = _FILENAME_RE.match(base)
    if m is None:
        return None
    breed_id = m.group("id")
    return breed_id if breed_id in _BY_ID else None


# --- free-text parser -------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _words(text: str) -> list[str]:
    """Lower-case words, treating punctuation, "_", "-" and whitespace all as separators."""
    return _NON_ALNUM.sub(" ", text.lower()).split()


def _spellings(words: list[str]) -> set[str]:
    """Every way of writing a phrase with some word gaps closed, plus plurals of the last word."""
    joined = {words[0]}
    # "pit bull"/"pitbull", "maine coon"/"mainecoon": closing a gap is a common spelling,
    # but only at the phrase's own word gaps, so "a by-product" never becomes "aby".
    for word in words[1:]:
        joined = {j + sep + word for j in joined for sep in (" ", "")}
    out = set(joined)
    for j in joined:
        out |= {j + "s", j + "es"}
        if j.endswith("y"):
            out.add(j[:-1] + "ies")  # "staffy" -> "staffies"
    return out


def _build_index() -> tuple[dict[str, str], frozenset[str], int]:
    """Map every spelling of every id, name and alias to its breed id; raise on a clash."""
    index: dict[str, str] = {}
    for breed in BREEDS:
        for phrase in (breed.id, breed.name, *breed.aliases):
            for spelling in _spellings(_words(phrase)):
                owner = index.setdefault(spelling, breed.id)
                if owner != breed.id:
                    raise ValueError(
                        f"{spelling!r} (from {phrase!r}) is claimed by both {owner!r} and {breed.id!r}"
                    )
    first_words = frozenset(s.split(" ", 1)[0] for s in index)
    max_words = max(s.count(" ") + 1 for s in index)
    return index, first_words, max_words


# Built once at import: a phrase lookup keyed by space-joined words, plus the set of
# words that can start a phrase so most words of a sentence cost one set lookup.
_INDEX, _FIRST_WORDS, _MAX_WORDS = _build_index()

_CODE_FENCE = re.compile(r"^```[A-Za-z]*\s*|\s*```$")


def _json_breed_value(text: str) -> str | None:
    """The "breed" string of a JSON-object answer (code fences allowed), else None."""
    s = _CODE_FENCE.sub("", text.strip())
    if not (s.startswith("{") and s.endswith("}")):
        return None
    try:
        obj = json.loads(s)
    except ValueError:
        return None
    value = obj.get("breed") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def _parse_plain(text: str) -> str:
    """Breed named in plain text: the longest phrase at each word, contained ones dropped."""
    words = _words(text)
    n = len(words)
    spans: list[tuple[int, int, str]] = []
    for i, word in enumerate(words):
        if word not in _FIRST_WORDS:
            continue
        for length in range(min(_MAX_WORDS, n - i), 0, -1):
            breed_id = _INDEX.get(" ".join(words[i : i + length]))
            if breed_id is not None:
                spans.append((i, i + length, breed_id))
                break
    # "pit bull" inside "american pit bull terrier" is part of that name, not a second answer.
    found = {
        bid
        for (s, e, bid) in spans
        if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for (s2, e2, _) in spans)
    }
    return found.pop() if len(found) == 1 else UNKNOWN


def parse_breed(text: str) -> str:
    """Map free text (a model answer) to exactly one breed id, or UNKNOWN if none or several."""
    if not text:
        return UNKNOWN
    value = _json_breed_value(text)
    # A constrained JSON answer is authoritative; its other fields may mention other breeds.
    return _parse_plain(value if value is not None else text)
