"""Built-in generated transduction data: addition problems and dates in human formats → ISO 8601.

Both are made by code with a seed (nothing is downloaded), and both come
as (train, valid, test) lists of (source, target) string pairs whose test
part is unseen in training: different problems for addition, different
calendar days for dates.
"""
from __future__ import annotations

import datetime as dt
import random

# English names for the formats that need no locale database
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# babel locales whose full, long and medium formats spell the month (or write it with a four-digit year);
# their short formats are left out (two-digit years are ambiguous across 1900-2099)
LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "pt_PT", "nl_NL", "sv_SE", "pl_PL", "tr_TR",
           "id_ID")
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2099, 12, 31)


# ---- addition ---------------------------------------------------------------------------------------

def addition_problem(rng: random.Random, digits: int) -> tuple[int, int]:
    """Two numbers, each of 1..digits digits (the digit count uniform, then the number uniform)."""
    def number():
        n = rng.randint(1, digits)
        return rng.randint(0 if n == 1 else 10 ** (n - 1), 10 ** n - 1)
    return number(), number()


def addition_splits(n_train: int, n_valid: int, n_test: int, digits: int = 3, reverse: bool = False,
                    seed: int = 0) -> tuple[list, list, list]:
    """Distinct problems "535+61" → "596"; ``reverse`` writes the source backwards ("16+535", as Keras's
    example does: the first digits the decoder needs are then the last the encoder read)."""
    total, space = n_train + n_valid + n_test, (10 ** digits) ** 2
    if total > space // 2:
        raise ValueError(f"{total} distinct problems asked of {digits}-digit numbers, which have only {space}")
    rng, seen, problems = random.Random(seed), set(), []
    while len(problems) < total:
        p = addition_problem(rng, digits)
        if p not in seen:
            seen.add(p)
            problems.append(p)
    pairs = [(f"{a}+{b}"[::-1] if reverse else f"{a}+{b}", str(a + b)) for a, b in problems]
    return pairs[:n_train], pairs[n_train:n_train + n_valid], pairs[n_train + n_valid:]


# ---- dates ------------------------------------------------------------------------------------------

def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


ENGLISH_FORMATS = (   # standard library only: English names, numeric forms
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {ordinal(d.day)}, {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day:02d}-{MONTHS[d.month - 1][:3].upper()}-{d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    lambda d: f"{d.year}{d.month:02d}{d.day:02d}",
)


def date_formatters(use_babel: bool = True) -> tuple[list, str]:
    """(formatters, a note): the English formats, plus babel's full/long/medium formats in LOCALES if
    babel is installed (the note says which)."""
    formats = list(ENGLISH_FORMATS)
    if not use_babel:
        return formats, "English and numeric formats only (babel not used)"
    try:
        from babel import Locale
        from babel.dates import format_date
    except ImportError:
        return formats, ("English and numeric formats only: install babel (pip install 'rnnkit[seq2seq]') "
                         "for month names in 12 languages")
    for name in LOCALES:
        locale = Locale.parse(name)
        for width in ("full", "long", "medium"):
            formats.append(lambda d, w=width, loc=locale: format_date(d, w, locale=loc))
    return formats, f"{len(formats)} formats: English, numeric, and babel's in {', '.join(LOCALES)}"


def date_splits(n_train: int, n_valid: int, n_test: int, seed: int = 0, use_babel: bool = True):
    """((train, valid, test), note): human-written dates → "YYYY-MM-DD", the days of the three parts disjoint
    (a seeded 10% of the days 1900-2099 for test, 5% for validation)."""
    formats, note = date_formatters(use_babel)
    days = [FIRST_DAY + dt.timedelta(n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]
    rng = random.Random(seed)
    rng.shuffle(days)
    n_test_days, n_valid_days = len(days) // 10, len(days) // 20
    pools = (days[n_test_days + n_valid_days:], days[n_test_days:n_test_days + n_valid_days], days[:n_test_days])

    def sample(n, pool):
        out = []
        for _ in range(n):
            d = rng.choice(pool)
            out.append((rng.choice(formats)(d), d.isoformat()))
        return out
    return tuple(sample(n, pool) for n, pool in zip((n_train, n_valid, n_test), pools)), note
