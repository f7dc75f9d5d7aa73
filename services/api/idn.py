"""What a destination domain is when it is internationalised (PRODUCT.md A2): its Unicode
form, and whether a label of it can pass for another domain.

Domains are stored in ASCII (punycode, `services.core.urls.ascii_host`) and shown so; for an
``xn--`` label the report adds the Unicode form and two warnings, per label:

- ``mixed_script``: the label mixes scripts beyond what one writing system uses (UTS 39's
  "highly restrictive" level: one script, or Latin with Han and Japanese kana, Han with
  Bopomofo, or Han with Hangul), e.g. ``аmazon`` (a Cyrillic ``а`` among Latin letters);
- ``confusable``: the label is written wholly in another script, in letters each of which
  Unicode's confusables data lists as a look-alike of an ASCII letter or digit, e.g.
  ``аррӏе``, under an ASCII top-level domain (under ``.рф`` Cyrillic is what one expects).

A domain in Latin letters with accents (``münchen.de``) is neither. Scripts and look-alikes
come from ``confusable_homoglyphs`` (Unicode's Scripts.txt and confusables.txt as data),
imported on the first internationalised domain: it takes a noticeable time to load.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import idna

# Characters of these scripts are in every script's words (digits, the hyphen) or take the
# script of the letter they mark (combining accents).
_NEUTRAL = frozenset({"COMMON", "INHERITED"})
_ONE_WRITING_SYSTEM = (frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
                       frozenset({"LATIN", "HAN", "BOPOMOFO"}),
                       frozenset({"LATIN", "HAN", "HANGUL"}))


class DomainForm(NamedTuple):
    idn: bool  # a label is internationalised (punycode)
    unicode: str  # the domain as its owner wrote it (the domain itself when not idn)
    mixed_script: bool
    confusable: bool

    def fields(self) -> dict[str, Any]:
        return self._asdict()


@functools.lru_cache(maxsize=4096)
def domain_form(domain: str) -> DomainForm:
    if "xn--" not in domain and domain.isascii():
        return DomainForm(False, domain, False, False)
    labels = [_unicode_label(label) for label in domain.split(".")]
    # Under a top-level domain of the label's own script (.рф) a reader expects that script.
    in_latin_context = labels[-1].isascii()
    return DomainForm(True, ".".join(labels), any(map(_mixed_script, labels)),
                      in_latin_context and any(map(_confusable, labels)))


def _unicode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return str(idna.decode(label))
    except idna.IDNAError:
        pass
    try:  # IDNA 2003 decodes what IDNA 2008 refuses (symbols); see urls.ascii_host
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        return label  # not valid punycode: shown as it is


def _scripts(label: str) -> set[str]:
    from confusable_homoglyphs import categories

    return {str(categories.alias(char)) for char in label} - _NEUTRAL


def _mixed_script(label: str) -> bool:
    if label.isascii():
        return False
    scripts = _scripts(label)
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in _ONE_WRITING_SYSTEM)


def _confusable(label: str) -> bool:
    if label.isascii():
        return False
    from confusable_homoglyphs import categories, confusables

    letters = {char for char in label if categories.alias(char) not in _NEUTRAL}
    if not letters or _scripts(label) & {"LATIN"}:
        return False
    return all(_looks_like_ascii(char, confusables) for char in letters)


def _looks_like_ascii(char: str, confusables: Any) -> bool:
    """Unicode lists a look-alike of ``char`` made of ASCII letters and digits (``р`` -> p;
    not ``ф`` -> the IPA letter ``ɸ``)."""
    found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"]) or []
    return any(glyph["c"].isascii() and glyph["c"].isalnum()
               for entry in found for glyph in entry["homoglyphs"])
