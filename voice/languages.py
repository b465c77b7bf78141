"""How customers ask for a product, per language: the question carriers around a product name,
the particles that may follow it, and how text splits into the words a speech model knows.

The grammar is built from these, so a question like "where can I find oat milk" or
"바나나 어디 있어요" decodes into carrier words plus a product name, and the carrier words are
stripped again before the name is matched against the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from voice.matcher import normalise


@dataclass(frozen=True)
class Language:
    """Question phrasing for one language.

    ``before`` carriers precede the product ("do you have ..."), ``after`` carriers follow it
    ("... 어디 있어요"); ``articles`` may sit right before the name and ``particles`` right after
    it. ``fillers`` are short everyday words and syllables that let speech about anything else
    decode as "something else" instead of as the nearest product. ``shop_words`` are things
    shoppers ask for in any shop (a store sells only some of them), a word or a short phrase
    each: as part of the filler they give off-catalogue questions, which are mostly about other
    shop things, somewhere better to go than the nearest product name; words a catalogue uses,
    and phrases inside a product's name, are left out when its grammar is built. ``spaced`` is
    False for scripts written without spaces (Chinese), whose names are split into model words by
    the vocabulary itself. ``symbols`` are the characters of a label said as words ("&" ->
    "and"), ``abbreviations`` the short words of a label said in full ("Dr Pepper": the
    dictionary's first "dr" is "drive"), ``decimal_word`` the word said for a decimal point,
    and ``pack_words`` the packaging words a customer leaves off the end of a name ("can",
    "bottle"), ``label_words``
    the words a shelf label adds that no customer says ("loose", "original"); see
    :mod:`voice.spoken`.
    """

    code: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    articles: tuple[str, ...] = ()
    particles: tuple[str, ...] = ()
    fillers: tuple[str, ...] = ()
    shop_words: tuple[str, ...] = ()
    spaced: bool = True
    symbols: tuple[tuple[str, str], ...] = ()
    abbreviations: tuple[tuple[str, str], ...] = ()
    decimal_word: str = ""
    pack_words: frozenset[str] = frozenset()
    label_words: frozenset[str] = frozenset()

    def shop_fillers(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(every word of the shop things, the things that are phrases), each once.

        Why phrases: the filler path takes one item, so "peanut butter" could only be heard as
        one filler word or as the nearest product ("oatly oat milk"); with the phrase among the
        alternatives it decodes as itself and is rejected.
        """
        words = tuple(dict.fromkeys(w for thing in self.shop_words for w in thing.split()))
        return words, tuple(thing for thing in self.shop_words if " " in thing)

    def carrier_words(self) -> frozenset[str]:
        """Every word a carrier, article or particle may contribute to a transcript."""
        words: set[str] = set()
        for phrase in (*self.before, *self.after, *self.articles, *self.particles):
            words.update(normalise(phrase).split())
        return frozenset(words)


def _things(*aisles: str) -> tuple[str, ...]:
    """Shop things written as comma-separated aisles, one tuple."""
    return tuple(thing.strip() for aisle in aisles for thing in aisle.split(","))


ENGLISH = Language(
    code="en",
    symbols=(("&", "and"), ("+", "plus"), ("%", "percent")),
    # brands: "Dr Pepper", "Dr. Oetker", "St Ivel", "St Dalfour", "Mr Kipling"
    abbreviations=(("dr", "doctor"), ("st", "saint"), ("mr", "mister")),
    decimal_word="point",
    pack_words=frozenset(
        "can cans bottle bottles jar jars tin tins carton cartons tub tubs pot pots pack packs "
        "packet packets multipack pouch pouches tray punnet".split()
    ),
    # How it is sold or a marketing word, never the product: "Bananas Loose", "Fairy Original
    # Washing Up Liquid". Not "fresh" or "organic": a store may sell both kinds of one product.
    label_words=frozenset("loose each original classic".split()),
    shop_words=_things(
        # fruit, vegetables and herbs
        "apricots, blackberries, blueberries, cherries, coconut, cranberries, dates, figs, "
        "grapes, lychees, raspberries, rhubarb, strawberries, tangerines, artichoke, "
        "beansprouts, broccoli, brussels sprouts, butternut squash, cauliflower, celery, "
        "chillies, corn, fennel, kale, lettuce, parsnips, peas, pumpkin, radishes, rocket, "
        "salad, shallots, spinach, spring onions, swede, turnips, watercress, herbs, parsley, "
        "basil, coriander, mint",
        # dairy, eggs and chilled
        "eggs, cheese, cheddar, mozzarella, parmesan, feta, brie, cottage cheese, cream cheese, "
        "butter, margarine, buttermilk, cream, double cream, whipped cream, creme fraiche, "
        "custard, tofu, hummus, dips, olives, pickles",
        # bakery
        "bread, bread rolls, sourdough, baguette, bagels, croissant, wraps, tortillas, pitta, "
        "crumpets, muffins, scones, doughnuts, pancakes, waffles, cake, pies, pastries, "
        "flapjacks, sausage rolls, bakery",
        # meat and fish
        "ham, bacon, sausages, salami, chorizo, pepperoni, gammon, chicken, chicken breasts, "
        "chicken wings, turkey, duck, beef, pork, lamb, venison, mince, steak, burgers, "
        "meatballs, lamb chops, pork chops, pork pies, fish, salmon, smoked salmon, tuna, cod, "
        "haddock, mackerel, trout, sardines, prawns, shrimp, crab, mussels, squid, fish "
        "fingers, deli, butcher, fishmonger",
        # cupboard
        "flour, sugar, icing sugar, salt, pepper, spices, rice, pasta, noodles, spaghetti, "
        "lasagne, couscous, quinoa, bulgur, semolina, lentils, chickpeas, beans, baked beans, "
        "tinned tomatoes, coconut milk, soup, stock cubes, gravy, sauce, curry paste, pesto, "
        "soy sauce, ketchup, mustard, mayonnaise, salad cream, salsa, vinegar, oil, olive oil, "
        "cooking oil, sunflower oil, breadcrumbs, baking powder, yeast, honey, jam, marmalade, "
        "syrup, treacle, peanut butter, nutella, chocolate spread, cereal, cornflakes, oats, "
        "porridge, granola, muesli",
        # snacks and sweets
        "cookies, biscuits, crackers, crispbread, rice cakes, oatcakes, crisps, chips, popcorn, "
        "nuts, peanut, peanuts, almonds, walnuts, cashews, pistachios, seeds, raisins, "
        "sultanas, chocolate, sweets, candy, gum, mints, marshmallows, jelly",
        # frozen
        "frozen peas, frozen vegetables, frozen pizza, pizza, oven chips, fries, ice cream, ice "
        "lollies, sorbet",
        # drinks
        "coffee, instant coffee, coffee beans, tea, tea bags, green tea, herbal tea, cocoa, hot "
        "chocolate, water, sparkling water, soda, cola, lemonade, tonic, squash, cordial, "
        "energy drinks, iced tea, kombucha, milkshake, smoothie, beer, lager, ale, wine, cider, "
        "champagne, prosecco, spirits, vodka, whisky, gin, rum, brandy",
        # baby, health and beauty
        "nappies, diapers, wipes, baby food, baby milk, formula, tissues, cotton buds, cotton "
        "wool, shampoo, conditioner, hair dye, soap, hand wash, shower gel, hand cream, "
        "moisturiser, toothpaste, toothbrush, floss, deodorant, razors, shaving, sunscreen, "
        "plasters, antiseptic, painkillers, cough medicine, vitamins, medicine, pharmacy, "
        "sanitary towels, tampons, condoms, perfume, makeup, lipstick",
        # household
        "toilet paper, paper towels, kitchen roll, foil, cling film, bin bags, detergent, "
        "washing powder, softener, bleach, cleaner, sponges, dishcloths, mop, bucket, dustpan, "
        "dishwasher tablets, washing up liquid, batteries, light bulbs, light bulb, extension "
        "lead, plug, fuse, charger, cables, candles, matches, lighter, glue, tape, scissors, "
        "kettle, toaster, plates, cups, mugs, napkins, straws, paper plates, umbrella, "
        "sunglasses, socks, tights, gloves, hats",
        # pets, garden, news and gifts
        "dog food, cat food, pet food, cat litter, bird seed, flowers, plants, magazines, "
        "newspapers, birthday cards, stamps, envelopes, pens, stationery, toys, gifts, "
        "balloons, wrapping paper, cigarettes, tobacco, lottery tickets",
        # places in the shop
        "toilets, restroom, exit, entrance, checkout, trolley, basket, cashpoint, atm, desk, "
        "customer service",
    ),
    before=(
        "where can i find",
        "where do i find",
        "where can i get",
        "where is",
        "where are",
        "where's",
        "do you have",
        "do you sell",
        "do you carry",
        "have you got",
        "i'm looking for",
        "i am looking for",
        "i want",
        "i need",
        "i would like",
        "can i get",
        "can you help me find",
        "can i have",
        "is there",
        "are there",
        "show me",
    ),
    after=("please",),
    articles=("the", "some", "any", "a", "an"),
    fillers=tuple(
        "a the of to and in is it you that he was for on are as with his they at be this have "
        "from or one had by word but not what all were we when your can said there use an each "
        "which she do how their if will up other about out many then them these so some her "
        "would make like him into time has look two more write go see number no way could "
        "people my than first water been call who oil its now find long down day did get come "
        "made may part new sound take only little work know place year live me back give most "
        "very after thing our just name good sentence man think say great where help through "
        "much before line right too mean old any same tell boy follow came want show also "
        "around form three small set put end does another well large must big even such "
        "because turn here why ask went men read need land different home us move try kind "
        "hand picture again change off play spell air away animal house point page letter "
        "mother answer found study still learn should world high every near add food between "
        "own below country plant last school father keep tree never start city earth eye light "
        "thought head under story saw left few while along might close something seem next "
        "hard open example begin life always those both paper together group often run "
        "important until children side feet car mile night walk white sea began grow took "
        "river four carry state once book hear stop without second later miss idea enough eat "
        "face watch far really almost let above girl sometimes mountain cut young talk soon "
        "list song being leave family".split()
    ),
)

KOREAN = Language(
    code="ko",
    before=(),
    after=(
        "어디 있어요",
        "어디에 있어요",
        "어디 있나요",
        "어디에 있나요",
        "어디 있습니까",
        "있어요",
        "있나요",
        "있습니까",
        "주세요",
        "사고 싶어요",
        "찾고 있어요",
    ),
    # No particles and no filler syllables: with Vosk's bigram grammar, one-syllable words
    # turn up everywhere ("바나나" heard as "발 이"). Measured on the demo catalogue (81
    # products, 3 espeak-ng voices): dropping them raised top-1 from 20 % to 27-32 % and cut the
    # real-time factor from 0.19 to 0.05; off-catalogue questions are rejected by the matcher's
    # whole-name score instead.
)

CHINESE = Language(
    code="zh",
    before=("请问", "有没有", "哪里有", "我要买", "我想买", "我在找", "你们有", "有"),
    after=("在哪里", "在哪儿", "在哪", "有吗", "有没有", "吗"),
    fillers=tuple(
        "的 一 是 不 了 人 我 在 有 他 这 中 大 来 上 国 个 到 说 们 为 子 和 你 地 出 道 也 时 年 "
        "得 就 那 要 下 以 生 会 自 着 去 之 过 家 学 对 可 她 里 后 小 么 心 多 天 而 能 好 都 "
        "然 没 日 于 起 还 发 成 事 只 作 当 想 看 文 无 开 手 十 用 主 行 方 又 如 前 所 本 见 "
        "经 头 面 公 同 三 已 老 从 动 两 长".split()
    ),
    spaced=False,
)

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (ENGLISH, KOREAN, CHINESE)}


def language(code: str) -> Language:
    """The phrasing for ``code``; an unknown code is an error a store can act on."""
    base = code.split("-")[0].lower()
    if base not in LANGUAGES:
        known = ", ".join(sorted(LANGUAGES))
        raise ValueError(
            f"voice search has no question phrasing for language {code!r}; use one of: {known}"
        )
    return LANGUAGES[base]


def segment(text: str, known: Callable[[str], bool], max_word: int = 8) -> list[str] | None:
    """Split unspaced ``text`` into the fewest words the model knows, or None when impossible.

    Used for Chinese names ("燕麦奶" -> "燕麦 奶") and to suggest a spelling for a word a model
    lacks ("청사과" -> "청 사과").
    """
    n = len(text)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for end in range(1, n + 1):
        for start in range(max(0, end - max_word), end):
            head = best[start]
            piece = text[start:end]
            if head is not None and known(piece):
                candidate = [*head, piece]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    return best[n]
