"""The words of generated event messages, with known frequencies (bench/workload.py).

A message is the action's verb ("login failed", "password reset") followed by:

- the COMMON words, each present in exactly a quarter of all events (independent
  draws): "session" and "user";
- 3 to 6 filler words drawn (with replacement) from a fixed vocabulary of 50,000 words
  with Zipf-Mandelbrot weights 1 / (rank + 2)^1.05: about 170 real audit-log words,
  then made-up three-syllable words ("bakeno"); the head reaches ~13% of events, the
  middle (ranks ~40-75) ~1%, the tail ~1 in 100,000 to 1 in 150,000;
- now and then a fixed phrase (PHRASES): "disk full" in 0.5% of events; "disk quota"
  and "full sync" make "disk" and "full" appear apart too, so the phrase is not just
  the two words;
- "denied" when the event failed.

``expected_share(word)`` is the exact probability that an event's searchable text (its
message, actor name, target names and metadata values) contains the token ``word``, for
the words of the message model; ``words_of_class`` lists the filler words of each
frequency class, so a benchmark can pick query words by class, deterministically.
Everything here is fixed: it does not depend on the seed.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

TOKEN = re.compile(r"[^\W_]+")  # a run of characters for which str.isalnum() holds


def word_list(text: str, sep: str | None = None) -> tuple[str, ...]:
    """The items of a long literal: words split at whitespace (or at ``sep``), stripped."""
    return tuple(w.strip() for w in text.split(sep))


def tokens(text: str) -> list[str]:
    """Runs of letters and digits, lower-cased (what a word query matches)."""
    return [t.lower() for t in TOKEN.findall(text)]


COMMON: tuple[tuple[str, float], ...] = (("session", 0.25), ("user", 0.25))
# (phrase, probability that an event's message has it), independent draws.
PHRASES: tuple[tuple[str, float], ...] = (
    ("disk full", 0.005),
    ("disk quota", 0.01),
    ("full sync", 0.01),
    ("token expired", 0.02),
    ("rate limit exceeded", 0.005),
)
FILLER_COUNTS = (3, 4, 5, 6)  # filler words per message, equally likely
ZIPF_SIZE = 50_000
ZIPF_OFFSET = 2.0
ZIPF_EXPONENT = 1.05
# The real words at the head of the filler vocabulary, most frequent first.
HEAD = word_list(
    """
access request from via console portal admin granted policy permission account
workspace api client browser mobile device login attempt changed updated new old
setting settings team member owner invite invitation email verified address
password approval approved rejected review pending completed started finished
scheduled job export import report download upload file files attachment share
shared link public private internal external guest viewer editor billing invoice
payment card plan subscription trial upgrade downgrade seat seats license webhook
integration sync connector audit log retention archive backup restore key secret
rotation scope scopes role roles group groups directory sso saml oidc mfa totp
passkey recovery code codes trusted untrusted location country ip network
firewall allowlist blocklist rule rules alert alerts notification notifications
threshold usage storage region cluster node deploy deployment release version
build pipeline branch commit merge repository project folder document page comment
mention label tag search query filter dashboard chart widget template theme
language timezone locale profile avatar display name username handle contact phone
support ticket escalation incident outage maintenance window passphrase
"""
)
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _made_up(count: int, taken: set[str]) -> list[str]:
    """``count`` three-syllable words (consonant + vowel each), in a fixed order."""
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    words = ["".join(p) for p in itertools.product(syllables, repeat=3)]
    random.Random(20261122).shuffle(words)
    out = [w for w in words if w not in taken]
    if len(out) < count:
        raise RuntimeError("not enough made-up words")
    return out[:count]


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[str, ...]  # the filler vocabulary, most frequent first
    cum_weights: tuple[float, ...]  # for random.choices(cum_weights=...)
    probabilities: tuple[float, ...]  # of one draw
    filler_share: dict[str, float]  # probability that an event's filler has the word

    def classes(self) -> dict[str, tuple[float, float]]:
        """Share ranges of the word classes a query benchmark picks from."""
        return {"common": (0.2, 0.3), "mid": (0.008, 0.012), "rare": (0.7e-5, 1.4e-5)}

    def words_of_class(self, name: str, reserved: Iterable[str] = ()) -> list[str]:
        """Filler words whose share of events is in the class's range (most frequent
        first); for "common" the COMMON words. ``reserved`` tokens (found elsewhere in
        events: verbs, names, metadata) are left out, so the share stays exact."""
        if name == "common":
            return [w for w, _ in COMMON]
        lo, hi = self.classes()[name]
        skip = set(reserved) | _phrase_words()
        return [w for w in self.words if lo <= self.filler_share[w] <= hi and w not in skip]


def _phrase_words() -> set[str]:
    return {t for phrase, _ in PHRASES for t in tokens(phrase)}


@functools.cache
def vocabulary() -> Vocabulary:
    taken = set(HEAD) | {w for w, _ in COMMON} | _phrase_words()
    if len(set(HEAD)) != len(HEAD) or taken & {w for w, _ in COMMON} & set(HEAD):
        raise RuntimeError("HEAD repeats a word, or holds a COMMON word")
    words = tuple(HEAD) + tuple(_made_up(ZIPF_SIZE - len(HEAD), taken))
    weights = [1.0 / (rank + ZIPF_OFFSET) ** ZIPF_EXPONENT for rank in range(1, len(words) + 1)]
    total = sum(weights)
    probs = tuple(w / total for w in weights)
    share = {
        word: sum(1 - (1 - p) ** k for k in FILLER_COUNTS) / len(FILLER_COUNTS)
        for word, p in zip(words, probs, strict=True)
    }
    return Vocabulary(words, tuple(itertools.accumulate(weights)), probs, share)


def message_share(word: str, verb_share: dict[str, float], failure_rate: float) -> float:
    """Probability that a generated message contains the token ``word``.

    ``verb_share``: token -> share of events whose verb text contains it (from the
    action distribution). The parts of a message are drawn independently.
    """
    absent = 1.0 - verb_share.get(word, 0.0)
    absent *= 1.0 - dict(COMMON).get(word, 0.0)
    absent *= 1.0 - vocabulary().filler_share.get(word, 0.0)
    for phrase, p in PHRASES:
        if word in tokens(phrase):
            absent *= 1.0 - p
    if word == "denied":
        absent *= 1.0 - failure_rate
    return 1.0 - absent
