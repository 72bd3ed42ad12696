"""Tests for lib.breeds: the breed table, file-name parsing and the free-text parser."""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Lets plain `pytest` (not only `python -m pytest` from the root) import lib.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from lib.breeds import (  # noqa: E402
    BREED_IDS,
    BREEDS,
    UNKNOWN,
    Breed,
    breed_from_filename,
    display_name,
    get_breed,
    parse_breed,
    species_of,
)

U = UNKNOWN

# Written out independently of lib.breeds so that a typo there fails here.
EXPECTED_NAMES: dict[str, str] = {
    "Abyssinian": "Abyssinian",
    "american_bulldog": "American Bulldog",
    "american_pit_bull_terrier": "American Pit Bull Terrier",
    "basset_hound": "Basset Hound",
    "beagle": "Beagle",
    "Bengal": "Bengal",
    "Birman": "Birman",
    "Bombay": "Bombay",
    "boxer": "Boxer",
    "British_Shorthair": "British Shorthair",
    "chihuahua": "Chihuahua",
    "Egyptian_Mau": "Egyptian Mau",
    "english_cocker_spaniel": "English Cocker Spaniel",
    "english_setter": "English Setter",
    "german_shorthaired": "German Shorthaired Pointer",
    "great_pyrenees": "Great Pyrenees",
    "havanese": "Havanese",
    "japanese_chin": "Japanese Chin",
    "keeshond": "Keeshond",
    "leonberger": "Leonberger",
    "Maine_Coon": "Maine Coon",
    "miniature_pinscher": "Miniature Pinscher",
    "newfoundland": "Newfoundland",
    "Persian": "Persian",
    "pomeranian": "Pomeranian",
    "pug": "Pug",
    "Ragdoll": "Ragdoll",
    "Russian_Blue": "Russian Blue",
    "saint_bernard": "Saint Bernard",
    "samoyed": "Samoyed",
    "scottish_terrier": "Scottish Terrier",
    "shiba_inu": "Shiba Inu",
    "Siamese": "Siamese",
    "Sphynx": "Sphynx",
    "staffordshire_bull_terrier": "Staffordshire Bull Terrier",
    "wheaten_terrier": "Wheaten Terrier",
    "yorkshire_terrier": "Yorkshire Terrier",
}
EXPECTED_IDS = tuple(EXPECTED_NAMES)
EXPECTED_CATS = {
    "Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
    "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx",
}  # fmt: skip

APBT = "american_pit_bull_terrier"
STAFF = "staffordshire_bull_terrier"
GSP = "german_shorthaired"
ECS = "english_cocker_spaniel"

PHRASINGS: list[tuple[str, str]] = [
    # Real model answers in sentences.
    ("The pet in this photo appears to be a Maine Coon cat.", "Maine_Coon"),
    ("This is a **Siamese** cat with blue eyes.", "Siamese"),
    ("Breed: Shiba Inu", "shiba_inu"),
    ("pug", "pug"),
    ("Pug\n", "pug"),
    ("I think it's an Abyssinian.", "Abyssinian"),
    ("Looks like a Yorkie!", "yorkshire_terrier"),
    ("Based on the pointed coat and blue eyes, I believe this is a Siamese.", "Siamese"),
    ("Answer: english setter", "english_setter"),
    ("The dog in the image is most likely a havanese.", "havanese"),
    ("This appears to be an American Bulldog.", "american_bulldog"),
    ("It's a Japanese Chin!", "japanese_chin"),
    ("I'd say a miniature pinscher.", "miniature_pinscher"),
    ("The breed is: samoyed", "samoyed"),
    ("  \n\tLeonberger\n", "leonberger"),
    # ImageNet label strings.
    ("Staffordshire bullterrier, Staffordshire bull terrier", STAFF),
    (
        "American Staffordshire terrier, Staffordshire terrier, American pit bull terrier, pit bull terrier",
        APBT,
    ),
    ("Egyptian cat", "Egyptian_Mau"),
    ("Leonberg", "leonberger"),
    ("Japanese spaniel", "japanese_chin"),
    ("German short-haired pointer", GSP),
    ("Scotch terrier, Scottish terrier, Scottie", "scottish_terrier"),
    ("basset, basset hound", "basset_hound"),
    ("cocker spaniel, English cocker spaniel, cocker", ECS),
    ("Saint Bernard, St Bernard", "saint_bernard"),
    ("Samoyed, Samoyede", "samoyed"),
    ("Newfoundland, Newfoundland dog", "newfoundland"),
    ("soft-coated wheaten terrier", "wheaten_terrier"),
    ("Siamese cat, Siamese", "Siamese"),
    ("Persian cat", "Persian"),
    ("pug, pug-dog", "pug"),
    # Longest, most specific match wins; contained shorter names don't count separately.
    ("American Pit Bull Terrier", APBT),
    ("Staffordshire Bull Terrier", STAFF),
    ("American Staffordshire terrier", APBT),
    ("English Cocker Spaniel", ECS),
    ("German Shorthaired Pointer", GSP),
    ("This looks like an English cocker spaniel, a gundog.", ECS),
    ("Pit bull (American Pit Bull Terrier)", APBT),
    # Two different breeds -> unknown; the same breed twice -> that breed.
    ("It could be a beagle or a basset hound", U),
    ("Either a Persian or a Ragdoll.", U),
    ("pug or boxer", U),
    ("Yorkshire terrier or Scottish terrier", U),
    ("A pit bull, maybe a Staffy", U),
    ("Siamese? No wait, Birman.", U),
    ("Pug. Yes, a pug.", "pug"),
    ("Samoyed (samoyeds are fluffy)", "samoyed"),
    ("Yorkie - a Yorkshire Terrier", "yorkshire_terrier"),
    ("St. Bernard, also called Saint Bernard", "saint_bernard"),
    # Whole words only.
    ("pomegranate", U),
    ("Pompeii", U),
    ("pugnacious", U),
    ("a by-product of the process", U),
    ("a Pom", "pomeranian"),
    ("the boxer dog", "boxer"),
    ("Doberman Pinscher", U),
    ("terrier", U),
    ("bulldog", U),
    ("spaniel", U),
    ("Egyptian", U),
    # Plurals.
    ("pugs", "pug"),
    ("Two beagles playing", "beagle"),
    ("Yorkies", "yorkshire_terrier"),
    ("Staffies", STAFF),
    ("Sphynxes", "Sphynx"),
    ("Chihuahuas", "chihuahua"),
    ("Pomeranians", "pomeranian"),
    ("Newfies", "newfoundland"),
    ("Maine Coons", "Maine_Coon"),
    ("Scottish Terriers", "scottish_terrier"),
    # Case, punctuation, hyphens, underscores, whitespace.
    ("SHIBA INU", "shiba_inu"),
    ("shiba-inu", "shiba_inu"),
    ("maine   coon", "Maine_Coon"),
    ("MaineCoon", "Maine_Coon"),
    ("Mainecoon", "Maine_Coon"),
    ("Pit-Bull", APBT),
    ("pitbull", APBT),
    ("min-pin", "miniature_pinscher"),
    ("St.Bernard", "saint_bernard"),
    ("BRITISH_SHORTHAIR", "British_Shorthair"),
    ("Russian  Blue!!", "Russian_Blue"),
    ("Great-Pyrenees", "great_pyrenees"),
    ("ShibaInu", "shiba_inu"),
    ("RussianBlue", "Russian_Blue"),
    ("minpin", "miniature_pinscher"),
    # Markdown.
    ("**Answer:** *Bengal*", "Bengal"),
    ("# Ragdoll", "Ragdoll"),
    ("`keeshond`", "keeshond"),
    ("- Breed: __Havanese__", "havanese"),
    # JSON answers: the "breed" value decides, other fields are ignored.
    ('{"breed": "pug"}', "pug"),
    ('{"breed": "american_pit_bull_terrier"}', APBT),
    ('{"breed": "Great Pyrenees"}', "great_pyrenees"),
    ('{"breed": "Egyptian_Mau", "confidence": 0.8}', "Egyptian_Mau"),
    ('{"breed": "boxer", "reason": "not a pug or a beagle"}', "boxer"),
    ('```json\n{"breed": "Sphynx"}\n```', "Sphynx"),
    ('{ "breed" : "Saint Bernard" }', "saint_bernard"),
    ('{"breed": "unknown"}', U),
    ('{"breed": "golden retriever"}', U),
    ('{"breed": null}', U),
    ('{"species": "dog"}', U),
    # Aliases in context.
    ("Looks like a GSP to me", GSP),
    ("A Newfie!", "newfoundland"),
    ("That's a Scottie.", "scottish_terrier"),
    ("Wolfspitz", "keeshond"),
    ("Pyrenean Mountain Dog", "great_pyrenees"),
    ("Sacred Cat of Burma", "Birman"),
    ("a hairless cat", "Sphynx"),
    ("Sphinx cat", "Sphynx"),
    ("British Blue", "British_Shorthair"),
    ("APBT", APBT),
    ("Aby", "Abyssinian"),
    ("Min Pin", "miniature_pinscher"),
    ("Basset", "basset_hound"),
    ("Staffy", STAFF),
    ("Wheaten", "wheaten_terrier"),
    ("Shiba", "shiba_inu"),
    ("St Bernard", "saint_bernard"),
    ("American Pit Bull", APBT),
    ("Bombay cat", "Bombay"),
    # Not one of the 37.
    ("tabby, tabby cat", U),
    ("golden retriever", U),
    ("", U),
    ("I cannot tell", U),
    ("a cat", U),
    ("a dog", U),
    ("Labrador retriever", U),
    ("German shepherd", U),
    ("English bulldog", U),
    ("Great Dane", U),
    ("A blue cat", U),
    ("unknown", U),
    ("N/A", U),
]
# Every breed by its display name and by its dataset id.
PHRASINGS += [(name, bid) for bid, name in EXPECTED_NAMES.items()]
PHRASINGS += [(bid, bid) for bid in EXPECTED_IDS]

ALIASES = [(alias, b.id) for b in BREEDS for alias in b.aliases]


def _pets_dir() -> Path:
    return Path(os.environ.get("PETS_DIR", REPO_ROOT / ".." / "shared" / "pets"))


# --- the table ------------------------------------------------------------------------


def test_there_are_37_breeds_12_cats_25_dogs() -> None:
    assert len(BREEDS) == 37
    assert all(isinstance(b, Breed) for b in BREEDS)
    cats = {b.id for b in BREEDS if b.species == "cat"}
    dogs = {b.id for b in BREEDS if b.species == "dog"}
    assert cats == EXPECTED_CATS
    assert len(cats) == 12 and len(dogs) == 25
    # The dataset's convention: capitalised ids are cats.
    assert cats == {b.id for b in BREEDS if b.id[0].isupper()}


def test_ids_are_unique_and_exactly_the_datasets() -> None:
    assert len(set(BREED_IDS)) == len(BREED_IDS)
    assert tuple(b.id for b in BREEDS) == BREED_IDS
    assert set(BREED_IDS) == set(EXPECTED_IDS)


def test_order_is_the_dataset_class_order() -> None:
    assert list(BREED_IDS) == sorted(BREED_IDS, key=str.lower)
    assert BREED_IDS == EXPECTED_IDS


@pytest.mark.parametrize(("breed_id", "name"), EXPECTED_NAMES.items())
def test_display_names(breed_id: str, name: str) -> None:
    assert display_name(breed_id) == name
    assert get_breed(breed_id).name == name


def test_display_name_and_species_of_unknown() -> None:
    assert display_name(UNKNOWN) == "Unknown"
    assert species_of(UNKNOWN) is None
    assert species_of("Persian") == "cat"
    assert species_of("pug") == "dog"


def test_breeds_are_frozen() -> None:
    with pytest.raises(AttributeError):
        BREEDS[0].name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["golden_retriever", "Pug", "", "unknown"])
def test_get_breed_bad_id_raises_keyerror_naming_it(bad: str) -> None:
    with pytest.raises(KeyError) as exc:
        get_breed(bad)
    assert repr(bad) in str(exc.value)


def test_get_breed_suggests_the_right_case() -> None:
    with pytest.raises(KeyError, match="'pug'"):
        get_breed("Pug")


def test_display_name_and_species_of_reject_bad_ids() -> None:
    with pytest.raises(KeyError, match="golden"):
        display_name("golden")
    with pytest.raises(KeyError, match="golden"):
        species_of("golden")


def test_no_alias_repeats_its_name_or_another_breeds_alias() -> None:
    seen: dict[str, str] = {}
    for b in BREEDS:
        for phrase in (b.name, *b.aliases):
            key = phrase.lower()
            assert seen.setdefault(key, b.id) == b.id, f"{phrase!r} used by {seen[key]} and {b.id}"
        assert b.name not in b.aliases


# --- file names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("Abyssinian_101.jpg", "Abyssinian"),
        ("american_pit_bull_terrier_12.jpg", APBT),
        ("/data/pets/images/British_Shorthair_7.JPG", "British_Shorthair"),
        ("C:\\pets\\pug_3.png", "pug"),
        ("german_shorthaired_200.jpg", GSP),
        ("abyssinian_101.jpg", None),  # ids are case-sensitive, as in the dataset
        ("Abyssinian.jpg", None),
        ("Abyssinian_101", None),
        ("Abyssinian_12a.jpg", None),
        ("Abyssinian_.jpg", None),
        ("golden_retriever_1.jpg", None),
        ("pug_1.jpg.bak", None),
        ("manifest.csv", None),
        ("", None),
    ],
)
def test_breed_from_filename(filename: str, expected: str | None) -> None:
    assert breed_from_filename(filename) == expected


def test_breed_from_filename_agrees_with_the_pets_manifest() -> None:
    pets = _pets_dir()
    if "PETS_DIR" not in os.environ and not pets.is_dir():
        pytest.skip(f"no pets folder at {pets} (set PETS_DIR)")
    with open(pets / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 259
    manifest = {r["filename"]: r for r in rows}
    assert len(manifest) == 259
    files = sorted(p.name for p in pets.iterdir() if p.is_file())
    assert set(manifest) <= set(files), "manifest names files that are missing"
    for name in files:
        got = breed_from_filename(str(pets / name))
        if name in manifest:
            assert got == manifest[name]["breed"], name
            assert species_of(got) == manifest[name]["species"], name
        else:
            assert got is None, name  # manifest.csv, ATTRIBUTION.md, ...
    assert {r["breed"] for r in rows} == set(BREED_IDS)


# --- the parser -----------------------------------------------------------------------


def test_there_are_enough_phrasings() -> None:
    assert len(PHRASINGS) >= 80
    assert {bid for _, bid in PHRASINGS} >= set(BREED_IDS) | {U}


@pytest.mark.parametrize(("text", "expected"), PHRASINGS)
def test_parse_breed(text: str, expected: str) -> None:
    assert parse_breed(text) == expected


def test_a_name_nested_in_a_longer_one_does_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # No shipped alias nests inside another breed's name, so plant one to pin the rule.
    import lib.breeds as breeds

    monkeypatch.setattr(breeds, "_INDEX", {**breeds._INDEX, "cocker spaniel": "boxer"})
    assert parse_breed("cocker spaniel") == "boxer"
    assert parse_breed("An English Cocker Spaniel.") == ECS
    assert parse_breed("English Cocker Spaniel or cocker spaniel") == U


@pytest.mark.parametrize("breed", BREEDS, ids=lambda b: b.id)
def test_display_name_parses_back(breed: Breed) -> None:
    assert parse_breed(breed.name) == breed.id
    assert parse_breed(f"I think this is a {breed.name}.") == breed.id
    assert parse_breed(f'{{"breed": "{breed.id}"}}') == breed.id


@pytest.mark.parametrize(("alias", "breed_id"), ALIASES)
def test_every_alias_parses_to_its_breed(alias: str, breed_id: str) -> None:
    assert parse_breed(alias) == breed_id
    assert parse_breed(f"Looks like a {alias.upper()}!") == breed_id


def test_every_breed_has_the_required_aliases() -> None:
    required = {
        "yorkshire_terrier": ["Yorkie"],
        "saint_bernard": ["St. Bernard", "St Bernard"],
        APBT: ["Pit Bull", "Pitbull", "APBT", "American Pit Bull", "American Staffordshire Terrier"],
        STAFF: ["Staffy", "Staffie", "Staffordshire bullterrier"],
        "wheaten_terrier": ["Soft-Coated Wheaten Terrier", "Wheaten"],
        "scottish_terrier": ["Scottie", "Scotch terrier"],
        GSP: ["GSP", "German short-haired pointer"],
        "great_pyrenees": ["Pyrenean Mountain Dog"],
        "japanese_chin": ["Japanese spaniel"],
        "miniature_pinscher": ["Min Pin"],
        "newfoundland": ["Newfie"],
        "pomeranian": ["Pom"],
        "shiba_inu": ["Shiba"],
        "leonberger": ["Leonberg"],
        "keeshond": ["Wolfspitz"],
        "basset_hound": ["Basset"],
        ECS: ["Cocker Spaniel"],
        "Egyptian_Mau": ["Egyptian cat"],
        "Persian": ["Persian cat"],
        "Siamese": ["Siamese cat"],
        "Maine_Coon": ["Mainecoon"],
        "British_Shorthair": ["British Blue"],
        "Sphynx": ["Sphinx cat", "hairless cat"],
        "Bengal": ["Bengal cat"],
        "Birman": ["Sacred Cat of Burma"],
        "Bombay": ["Bombay cat"],
        "Abyssinian": ["Aby"],
    }
    for breed_id, aliases in required.items():
        have = {a.lower() for a in get_breed(breed_id).aliases}
        missing = [a for a in aliases if a.lower() not in have]
        assert not missing, f"{breed_id} lacks aliases {missing}"


def test_parse_breed_is_fast() -> None:
    text = "The pet in this photo appears to be a Maine Coon cat."
    n = 2000
    best = float("inf")
    # Best of several batches, so a busy machine doesn't make this flaky.
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            parse_breed(text)
        best = min(best, (time.perf_counter() - t0) / n)
    assert best < 50e-6, f"parse_breed took {best * 1e6:.1f} µs"
