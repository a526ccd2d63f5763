"""SynthSign vocabulary: the concepts both synthetic sign languages have a sign for.

Each concept has an UPPERCASE gloss (multiword glosses are hyphenated: THANK-YOU), a
category and its English surface forms. Synonyms ("store" / "shop") are separate
*lemmas* of one concept, so they map to one gloss; each lemma lists its inflected forms
in the order ``FORM_SLOTS`` gives for the category (a count noun's singular and plural,
a verb's base, 3rd person, past and -ing form, ...). A noun lemma with a single form is
a mass noun ("water", "rice"): no article and no plural.

The tables below are the hand-written data, one concept a line::

    GLOSS  form/form/... | synonym/form/...  : extra

where ``extra`` holds, for verbs, the categories (lowercase) or glosses (UPPERCASE) of
the objects the verb takes, ``to`` for a verb that takes them after "to" and
``stative`` for a verb with no progressive ("I am liking" is not English); for
adjectives, the noun categories or glosses they describe; for time words, the tenses
they allow (``past``, ``present`` habitual, ``progressive``, ``future``).

Q-PART, the yes/no question particle, is a concept with no English form: it is in
both languages' lexicons (every concept is) but only ssl-b's grammar uses it.

Person names are not concepts: they are always fingerspelled, glossed ``fs-ANNA``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

# The inflected forms each lemma lists, per category.
_NOUN_SLOTS = ("singular", "plural")
FORM_SLOTS: dict[str, tuple[str, ...]] = {
    "pronoun": ("subject", "object"),
    "possessive": ("word",),
    "person": _NOUN_SLOTS, "place": _NOUN_SLOTS, "vehicle": _NOUN_SLOTS,
    "clothes": _NOUN_SLOTS, "thing": _NOUN_SLOTS, "media": _NOUN_SLOTS,
    "food": _NOUN_SLOTS, "drink": _NOUN_SLOTS, "animal": _NOUN_SLOTS,
    "verb": ("base", "third", "past", "ing"),
    "adjective": ("word",),
    "time": ("word", "phrase"),  # "monday" / "on Monday"; one form = both
    "wh": ("word",), "number": ("word",), "negation": ("word",),
    "discourse": ("word",), "particle": (),
}
CATEGORIES: tuple[str, ...] = tuple(FORM_SLOTS)
NOUN_CATEGORIES: tuple[str, ...] = tuple(c for c, s in FORM_SLOTS.items() if s == _NOUN_SLOTS)
TENSES: tuple[str, ...] = ("past", "present", "progressive", "future")


@dataclass(frozen=True)
class Concept:
    """One concept: gloss, category, English lemmas and how it combines."""

    gloss: str
    category: str
    lemmas: tuple[tuple[str, ...], ...]  # synonyms, each its forms in FORM_SLOTS order
    combines: tuple[str, ...] = ()  # verbs: objects; adjectives: nouns (category or gloss)
    preposition: str = ""  # "to" for verbs whose object follows "to"
    stative: bool = False
    tenses: tuple[str, ...] = ()  # time words only

    @property
    def words(self) -> tuple[str, ...]:
        """Every English surface form, without repeats, in table order."""
        return tuple(dict.fromkeys(form for lemma in self.lemmas for form in lemma))

    @property
    def is_mass(self) -> bool:
        """A noun with no plural (and so no article and no number)."""
        return self.category in NOUN_CATEGORIES and len(self.lemmas[0]) == 1


_PRONOUNS = """
I        I/me
YOU      you/you
HE       he/him
SHE      she/her
WE       we/us
THEY     they/them
"""

# "her" is SHE's object form, so there is no possessive HER (one gloss per surface form).
_POSSESSIVES = """
MY       my
YOUR     your
HIS      his
OUR      our
THEIR    their
"""

_PERSONS = """
MOTHER       mother/mothers | mom/moms
FATHER       father/fathers | dad/dads
BROTHER      brother/brothers
SISTER       sister/sisters
SON          son/sons
DAUGHTER     daughter/daughters
GRANDMOTHER  grandmother/grandmothers | grandma/grandmas
GRANDFATHER  grandfather/grandfathers | grandpa/grandpas
HUSBAND      husband/husbands
WIFE         wife/wives
BABY         baby/babies
CHILD        child/children | kid/kids
BOY          boy/boys
GIRL         girl/girls
MAN          man/men
WOMAN        woman/women
FRIEND       friend/friends
NEIGHBOR     neighbor/neighbors
TEACHER      teacher/teachers
STUDENT      student/students | pupil/pupils
DOCTOR       doctor/doctors
NURSE        nurse/nurses
POLICE       police officer/police officers | officer/officers
BOSS         boss/bosses
FARMER       farmer/farmers
DRIVER       driver/drivers
"""

_PLACES = """
STORE        store/stores | shop/shops
SCHOOL       school/schools
HOUSE        house/houses
HOME         home/homes
HOSPITAL     hospital/hospitals
PARK         park/parks
LIBRARY      library/libraries
RESTAURANT   restaurant/restaurants
CHURCH       church/churches
BANK         bank/banks
OFFICE       office/offices
BEACH        beach/beaches
CITY         city/cities | town/towns
AIRPORT      airport/airports
MUSEUM       museum/museums
ZOO          zoo/zoos
FARM         farm/farms
UNIVERSITY   university/universities | college/colleges
MARKET       market/markets
KITCHEN      kitchen/kitchens
GARDEN       garden/gardens
"""

_VEHICLES = """
CAR          car/cars | automobile/automobiles
BUS          bus/buses
TRAIN        train/trains
PLANE        plane/planes | airplane/airplanes
BIKE         bike/bikes | bicycle/bicycles
BOAT         boat/boats
TRUCK        truck/trucks
TAXI         taxi/taxis | cab/cabs
"""

_CLOTHES = """
HAT          hat/hats | cap/caps
SHOE         shoe/shoes
SHIRT        shirt/shirts
DRESS        dress/dresses
COAT         coat/coats | jacket/jackets
SOCK         sock/socks
"""

_THINGS = """
BOOK         book/books
PHONE        phone/phones | telephone/telephones
COMPUTER     computer/computers
BALL         ball/balls
BAG          bag/bags
BOX          box/boxes
CHAIR        chair/chairs
TABLE        table/tables
BED          bed/beds
DOOR         door/doors
WINDOW       window/windows
PEN          pen/pens
KEY          key/keys
CUP          cup/cups | mug/mugs
CLOCK        clock/clocks
TOY          toy/toys
PICTURE      picture/pictures | photo/photos
GIFT         gift/gifts | present/presents
TICKET       ticket/tickets
LETTER       letter/letters
UMBRELLA     umbrella/umbrellas
CAMERA       camera/cameras
NEWSPAPER    newspaper/newspapers
FLOWER       flower/flowers
RADIO        radio/radios
"""

_MEDIA = """
MOVIE        movie/movies | film/films
TV           TV | television
GAME         game/games
SONG         song/songs
MUSIC        music
"""

_FOOD = """
APPLE        apple/apples
BANANA       banana/bananas
ORANGE       orange/oranges
GRAPE        grape/grapes
STRAWBERRY   strawberry/strawberries
CARROT       carrot/carrots
POTATO       potato/potatoes
TOMATO       tomato/tomatoes
EGG          egg/eggs
CAKE         cake/cakes
COOKIE       cookie/cookies | biscuit/biscuits
SANDWICH     sandwich/sandwiches
PIZZA        pizza/pizzas
SALAD        salad/salads
BREAD        bread
RICE         rice
SOUP         soup
MEAT         meat
CHEESE       cheese
PASTA        pasta
CHOCOLATE    chocolate
ICE-CREAM    ice cream
CANDY        candy | sweets
SUGAR        sugar
"""

_DRINKS = """
WATER        water
MILK         milk
COFFEE       coffee
TEA          tea
JUICE        juice
SODA         soda | lemonade
"""

_ANIMALS = """
DOG          dog/dogs
CAT          cat/cats | kitty/kitties
BIRD         bird/birds
FISH         fish/fish
HORSE        horse/horses
COW          cow/cows
PIG          pig/pigs
SHEEP        sheep/sheep
CHICKEN      chicken/chickens
RABBIT       rabbit/rabbits | bunny/bunnies
MOUSE        mouse/mice
LION         lion/lions
BEAR         bear/bears
ELEPHANT     elephant/elephants
MONKEY       monkey/monkeys
DUCK         duck/ducks
FROG         frog/frogs
SNAKE        snake/snakes
"""

# Motion verbs take a place after "to" (their object is a destination); transitive
# verbs list what they take; verbs with no extra are intransitive.
_VERBS = """
GO           go/goes/went/going                    : to place
COME         come/comes/came/coming                : to place
WALK         walk/walks/walked/walking             : to place
DRIVE        drive/drives/drove/driving            : to place
RUN          run/runs/ran/running                  : to place
TRAVEL       travel/travels/traveled/traveling     : to CITY BEACH FARM ZOO UNIVERSITY HOME
RETURN       return/returns/returned/returning     : to place
FLY          fly/flies/flew/flying                 : to CITY BEACH HOME
EAT          eat/eats/ate/eating                   : food
DRINK        drink/drinks/drank/drinking           : drink
COOK         cook/cooks/cooked/cooking             : food
MAKE         make/makes/made/making                : food drink
BUY          buy/buys/bought/buying | purchase/purchases/purchased/purchasing
                                                   : thing clothes vehicle food drink
SELL         sell/sells/sold/selling               : thing clothes vehicle food animal
WANT         want/wants/wanted/wanting             : stative thing clothes vehicle food drink animal
NEED         need/needs/needed/needing             : stative thing clothes vehicle food drink
LIKE         like/likes/liked/liking
             : stative person animal thing vehicle food drink media place clothes
LOVE         love/loves/loved/loving               : stative person animal food drink media place
HATE         hate/hates/hated/hating | dislike/dislikes/disliked/disliking
                                                   : stative animal food drink media
HAVE         have/has/had/having                   : stative thing clothes vehicle animal
SEE          see/sees/saw/seeing                   : stative person animal vehicle
LOOK-FOR     look for/looks for/looked for/looking for : thing clothes animal person
FIND         find/finds/found/finding              : thing clothes animal
LOSE         lose/loses/lost/losing                : thing clothes
FORGET       forget/forgets/forgot/forgetting      : thing clothes
BRING        bring/brings/brought/bringing         : thing food drink
CARRY        carry/carries/carried/carrying        : BAG BOX BOOK BABY CHAIR TABLE UMBRELLA
OPEN         open/opens/opened/opening             : DOOR WINDOW BOX BAG BOOK GIFT LETTER
CLOSE        close/closes/closed/closing | shut/shuts/shut/shutting : DOOR WINDOW BOX BAG BOOK
CLEAN        clean/cleans/cleaned/cleaning
             : vehicle HOUSE KITCHEN OFFICE GARDEN CUP TABLE WINDOW DOOR
WASH         wash/washes/washed/washing            : vehicle animal clothes CUP
FIX          fix/fixes/fixed/fixing | repair/repairs/repaired/repairing
             : vehicle PHONE COMPUTER DOOR WINDOW TOY CLOCK CHAIR TABLE CAMERA RADIO
READ         read/reads/read/reading               : BOOK LETTER NEWSPAPER
WRITE        write/writes/wrote/writing            : LETTER BOOK SONG
WATCH        watch/watches/watched/watching        : MOVIE TV GAME
LISTEN       listen/listens/listened/listening     : to SONG MUSIC RADIO
WEAR         wear/wears/wore/wearing               : clothes
RIDE         ride/rides/rode/riding                : vehicle HORSE
BORROW       borrow/borrows/borrowed/borrowing     : thing vehicle
DRAW         draw/draws/drew/drawing               : animal PICTURE FLOWER
FEED         feed/feeds/fed/feeding                : animal BABY
HELP         help/helps/helped/helping             : person
CALL         call/calls/called/calling             : person
VISIT        visit/visits/visited/visiting         : person place
MEET         meet/meets/met/meeting                : person
ASK          ask/asks/asked/asking                 : person
TEACH        teach/teaches/taught/teaching         : person
KNOW         know/knows/knew/knowing               : stative person
UNDERSTAND   understand/understands/understood/understanding : stative person
REMEMBER     remember/remembers/remembered/remembering : stative person
MISS         miss/misses/missed/missing            : stative person
SLEEP        sleep/sleeps/slept/sleeping
WORK         work/works/worked/working
LAUGH        laugh/laughs/laughed/laughing
CRY          cry/cries/cried/crying
DANCE        dance/dances/danced/dancing
SING         sing/sings/sang/singing
SWIM         swim/swims/swam/swimming
WAIT         wait/waits/waited/waiting
PLAY         play/plays/played/playing
STUDY        study/studies/studied/studying
REST         rest/rests/rested/resting | relax/relaxes/relaxed/relaxing
"""

_ADJECTIVES = """
BIG          big | large                : thing vehicle clothes animal place
SMALL        small | little             : thing vehicle clothes animal place
HAPPY        happy | glad               : person animal
SAD          sad | unhappy              : person
ANGRY        angry | mad                : person animal
TIRED        tired | sleepy             : person animal
HUNGRY       hungry                     : person animal
THIRSTY      thirsty                    : person animal
SICK         sick | ill                 : person animal
SCARED       scared | frightened        : person animal
BORED        bored                      : person
EXCITED      excited                    : person
BUSY         busy                       : person place
FUNNY        funny                      : person animal media
SMART        smart | clever | intelligent : person animal
FRIENDLY     friendly | kind            : person animal
STRONG       strong                     : person animal
TALL         tall                       : person
OLD          old                        : person animal thing vehicle place
YOUNG        young                      : person animal
NEW          new                        : thing vehicle clothes place media
HOT          hot                        : food drink
COLD         cold                       : food drink
DELICIOUS    delicious | tasty          : food drink
GOOD         good | nice                : person thing food drink media
BAD          bad                        : food drink media
BEAUTIFUL    beautiful | pretty         : person animal thing clothes place
UGLY         ugly                       : animal thing clothes
EXPENSIVE    expensive                  : thing vehicle clothes food
CHEAP        cheap                      : thing vehicle clothes
DIRTY        dirty                      : thing vehicle clothes animal place
FAST         fast | quick               : vehicle animal
SLOW         slow                       : vehicle animal
QUIET        quiet                      : person animal place
LOUD         loud | noisy               : person animal place
RED          red                        : thing vehicle clothes
BLUE         blue                       : thing vehicle clothes
GREEN        green                      : thing vehicle clothes
YELLOW       yellow                     : thing vehicle clothes
BLACK        black                      : thing vehicle clothes animal
WHITE        white                      : thing vehicle clothes animal
BROWN        brown                      : thing clothes animal
"""

_TIMES = """
TODAY        today                      : past progressive future
TOMORROW     tomorrow                   : future
YESTERDAY    yesterday                  : past
NOW          now                        : progressive
LATER        later                      : future
TONIGHT      tonight                    : future
LAST-NIGHT   last night                 : past
MORNING      morning/in the morning     : present
AFTERNOON    afternoon/in the afternoon : present
EVENING      evening/in the evening     : present
NIGHT        night/at night             : present
EVERY-DAY    every day                  : present
MONDAY       Monday/on Monday           : past future
TUESDAY      Tuesday/on Tuesday         : past future
WEDNESDAY    Wednesday/on Wednesday     : past future
THURSDAY     Thursday/on Thursday       : past future
FRIDAY       Friday/on Friday           : past future
SATURDAY     Saturday/on Saturday       : past future
SUNDAY       Sunday/on Sunday           : past future
NEXT-WEEK    next week                  : future
LAST-WEEK    last week                  : past
NEXT-YEAR    next year                  : future
LAST-YEAR    last year                  : past
"""

_WH = """
WHO          who
WHAT         what
WHERE        where
WHEN         when
WHY          why
HOW          how
"""

_NUMBERS = """
ONE          one | 1
TWO          two | 2
THREE        three | 3
FOUR         four | 4
FIVE         five | 5
SIX          six | 6
SEVEN        seven | 7
EIGHT        eight | 8
NINE         nine | 9
TEN          ten | 10
"""

_DISCOURSE = """
YES          yes | yeah
NO           no
PLEASE       please
THANK-YOU    thank you | thanks
HELLO        hello | hi
GOODBYE      goodbye | bye
SORRY        sorry
"""

_TABLES = (
    ("pronoun", _PRONOUNS), ("possessive", _POSSESSIVES), ("person", _PERSONS),
    ("place", _PLACES), ("vehicle", _VEHICLES), ("clothes", _CLOTHES), ("thing", _THINGS),
    ("media", _MEDIA), ("food", _FOOD), ("drink", _DRINKS), ("animal", _ANIMALS),
    ("verb", _VERBS), ("adjective", _ADJECTIVES), ("time", _TIMES), ("wh", _WH),
    ("number", _NUMBERS), ("negation", "NOT  not"), ("discourse", _DISCOURSE),
    ("particle", "Q-PART"),
)

NAMES: tuple[str, ...] = (
    "Anna", "Ben", "Carlos", "Dana", "Eva", "Finn", "Grace", "Hugo", "Ines", "Jack",
    "Kim", "Leo", "Maya", "Nina", "Omar", "Paul", "Quinn", "Rosa", "Sam", "Tara",
    "Uma", "Victor", "Wendy", "Xavier", "Yuki", "Zoe", "Lena", "Mark", "Sofia", "Theo",
)

_GLOSS = re.compile(r"[A-Z]+(-[A-Z]+)*")


def name_gloss(name: str) -> str:
    """The gloss of a fingerspelled name: "Anna" -> "fs-ANNA"."""
    return "fs-" + name.upper()


def _parse(category: str, table: str) -> list[Concept]:
    """Concepts of one table; a line starting with whitespace continues the one above."""
    lines: list[str] = []
    for line in table.strip("\n").splitlines():
        if line[:1].isspace():
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    concepts = []
    for line in lines:
        gloss, _, rest = line.partition(" ")
        forms, _, extra = rest.partition(":")
        tokens = extra.split()
        lemmas = tuple(tuple(f.strip() for f in lemma.split("/"))
                       for lemma in forms.split("|") if lemma.strip())
        if category == "time":
            concepts.append(Concept(gloss=gloss, category=category, lemmas=lemmas,
                                    tenses=tuple(tokens)))
            continue
        concepts.append(Concept(
            gloss=gloss, category=category, lemmas=lemmas,
            combines=tuple(t for t in tokens if t not in ("to", "stative")),
            preposition="to" if "to" in tokens else "", stative="stative" in tokens))
    return concepts


def _check(concepts: dict[str, Concept]) -> None:
    """Data errors fail at import: they are bugs in the tables above."""
    owner: dict[str, str] = {}
    for c in concepts.values():
        slots = len(FORM_SLOTS[c.category])
        if not _GLOSS.fullmatch(c.gloss):
            raise ValueError(f"gloss {c.gloss!r} is not UPPERCASE-WITH-HYPHENS")
        for lemma in c.lemmas:
            # A noun lemma of one form is a mass noun; a time word of one form is its phrase.
            if len(lemma) != slots and not (len(lemma) == 1 and slots == 2):
                raise ValueError(f"{c.gloss}: lemma {lemma} needs {slots} forms")
        for word in c.words:
            other = owner.setdefault(word.lower(), c.gloss)
            if other != c.gloss:
                raise ValueError(f"{word!r} is a form of both {other} and {c.gloss}")
        for ref in c.combines:
            if ref not in CATEGORIES and ref not in concepts:
                raise ValueError(f"{c.gloss} combines with unknown {ref!r}")
        for tense in c.tenses:
            if tense not in TENSES:
                raise ValueError(f"{c.gloss}: unknown tense {tense!r}")
    for name in NAMES:
        if not name.isalpha() or not name.isascii() or name.lower() in owner:
            raise ValueError(f"name {name!r} is not a plain A-Z word of its own")


def _build() -> dict[str, Concept]:
    concepts: dict[str, Concept] = {}
    for category, table in _TABLES:
        for concept in _parse(category, table):
            if concept.gloss in concepts:
                raise ValueError(f"gloss {concept.gloss} is defined twice")
            concepts[concept.gloss] = concept
    _check(concepts)
    return concepts


#: Every concept, by gloss, in table order.
CONCEPTS: MappingProxyType[str, Concept] = MappingProxyType(_build())
