"""The ImageNet-1k classes a general pet model can name (dogs 151-268, cats 281-285) and their breeds.

ImageNet knows 25 of the 37 Oxford-IIIT Pet breeds; `BREED_OF_CLASS` maps those classes to breed ids.
"""

from __future__ import annotations

__all__ = ["PET_LABELS", "BREED_OF_CLASS"]

_DOGS = [
    "Chihuahua", "Japanese spaniel", "Maltese dog", "Pekinese", "Shih-Tzu", "Blenheim spaniel", "papillon",
    "toy terrier", "Rhodesian ridgeback", "Afghan hound", "basset", "beagle", "bloodhound", "bluetick",
    "black-and-tan coonhound", "Walker hound", "English foxhound", "redbone", "borzoi", "Irish wolfhound",
    "Italian greyhound", "whippet", "Ibizan hound", "Norwegian elkhound", "otterhound", "Saluki",
    "Scottish deerhound", "Weimaraner", "Staffordshire bullterrier", "American Staffordshire terrier",
    "Bedlington terrier", "Border terrier", "Kerry blue terrier", "Irish terrier", "Norfolk terrier",
    "Norwich terrier", "Yorkshire terrier", "wire-haired fox terrier", "Lakeland terrier", "Sealyham terrier",
    "Airedale", "cairn", "Australian terrier", "Dandie Dinmont", "Boston bull", "miniature schnauzer",
    "giant schnauzer", "standard schnauzer", "Scotch terrier", "Tibetan terrier", "silky terrier",
    "soft-coated wheaten terrier", "West Highland white terrier", "Lhasa", "flat-coated retriever",
    "curly-coated retriever", "golden retriever", "Labrador retriever", "Chesapeake Bay retriever",
    "German short-haired pointer", "vizsla", "English setter", "Irish setter", "Gordon setter",
    "Brittany spaniel", "clumber", "English springer", "Welsh springer spaniel", "cocker spaniel",
    "Sussex spaniel", "Irish water spaniel", "kuvasz", "schipperke", "groenendael", "malinois", "briard",
    "kelpie", "komondor", "Old English sheepdog", "Shetland sheepdog", "collie", "Border collie",
    "Bouvier des Flandres", "Rottweiler", "German shepherd", "Doberman", "miniature pinscher",
    "Greater Swiss Mountain dog", "Bernese mountain dog", "Appenzeller", "EntleBucher", "boxer",
    "bull mastiff", "Tibetan mastiff", "French bulldog", "Great Dane", "Saint Bernard", "Eskimo dog",
    "malamute", "Siberian husky", "dalmatian", "affenpinscher", "basenji", "pug", "Leonberg", "Newfoundland",
    "Great Pyrenees", "Samoyed", "Pomeranian", "chow", "keeshond", "Brabancon griffon", "Pembroke",
    "Cardigan", "toy poodle", "miniature poodle", "standard poodle", "Mexican hairless",
]
_CATS = ["tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]

# ImageNet class index -> label, for the classes a pet photo can sensibly be called.
PET_LABELS: dict[int, str] = {151 + i: name for i, name in enumerate(_DOGS)} | {
    281 + i: name for i, name in enumerate(_CATS)
}
assert max(k for k in PET_LABELS if k < 281) == 268

BREED_OF_CLASS: dict[int, str] = {
    151: "chihuahua", 152: "japanese_chin", 161: "basset_hound", 162: "beagle",
    179: "staffordshire_bull_terrier", 180: "american_pit_bull_terrier", 187: "yorkshire_terrier",
    199: "scottish_terrier", 202: "wheaten_terrier", 210: "german_shorthaired", 212: "english_setter",
    219: "english_cocker_spaniel", 237: "miniature_pinscher", 242: "boxer", 247: "saint_bernard", 254: "pug",
    255: "leonberger", 256: "newfoundland", 257: "great_pyrenees", 258: "samoyed", 259: "pomeranian",
    261: "keeshond", 283: "Persian", 284: "Siamese", 285: "Egyptian_Mau",
}
