"""Paper versus graph: every figure of the founding paper, side by side with the graph's answer.

The figures are the transcription `studies/founding_spec/paper-facts.json` (a copy of the project's
shared/paper/paper-facts.json) with the project's revisions and additions (`fact_revisions.json`: facts read
differently from the transcription and facts it missed, each with its reason and section).  Every fact gets
one row: answered from the graph through named queries (`code_frequencies`, `cooccurrence`, the segment unit's
passages, `agreement`, `codes`, `participants`, `sources`, `quotes`, `threat_map`), or listed as *not
answerable* with why (`fact_notes.json`: the study holds nothing that says it).  None is skipped.

How facts are read (DESIGN.md, PROVENANCE.md):

- *codings*: the study's analysis (consensus) codings of a code;
- a co-occurrence in *codings* ("occur together six times"): passages of the segment unit (overlapping
  selections) in which every two of the codes co-occur — for two codes, `cooccurrence`'s n_ab;
- *participants*: participants whose analysis codings anywhere in their material include **every** listed
  code, checked code by code (`code_logic` *any* alone means one code of a group, e.g. "some kind of
  defense"); negated codes: none of them; `scope` *segment*: the codes in one passage, and no negated code in
  any passage that carries them;
- participant facts without codes: from the participants table (Table 1), by the rule in fact_notes.json.
"""
from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path

import pandas as pd

from mmkg.api import Mmkg

CODEBOOK_PREFIX = {"I": "interview", "D": "drawing"}
COMPARATORS = {"==": lambda x, v: x == v, ">=": lambda x, v: x >= v, ">": lambda x, v: x > v,
               "<": lambda x, v: x < v, "<=": lambda x, v: x <= v, "approx": lambda x, v: abs(x - v) < 0.5}
CODING_KINDS = ("code_count_codings", "code_count_participants", "cooccurrence", "participants_list")
KNOWLEDGE = {"++": "lectures", "+": "self_study", "": "none"}
KAPPA_NOTE = ("mmkg's κ counts every passage × code of the codebook (code present or not, passages of the coders' "
              "overlapping selections); the paper does not publish its unit, and with the published agreement counts "
              "(989/136; 233/42 under reading A, 275/42 under reading B) any presence unit gives κ near 2·agreed / "
              "(2·agreed + disagreed), far above 0.71 (studies/founding/PROVENANCE.md, 'Cohen's κ').")
READING_NOTE = ("The graph uses reading A of the drawing figure ('275 codes on drawings in total, with 42 "
                "disagreements': 275 compared, 233 agreed); this row is reading B (275 agreed + 42 = 317).")
COLUMNS = ["id", "section", "kind", "confidence", "paper_value", "comparator", "graph_value", "match", "status",
           "detail", "unit", "query", "note"]


def _spec_dir() -> Path:
    from mmkg import studies

    return Path(studies.__file__).parent / "founding_spec"


def transcription() -> list[dict]:
    """The shipped copy of the transcription, unchanged."""
    return json.loads((_spec_dir() / "paper-facts.json").read_text(encoding="utf-8"))


def paper_facts() -> list[dict]:
    """The transcription with fact_revisions.json applied; revised and added facts carry `revision` (why)."""
    from mmkg.studies.generate_founding import apply_revisions

    revisions = json.loads((_spec_dir() / "fact_revisions.json").read_text(encoding="utf-8"))
    return apply_revisions(transcription(), revisions)


def fact_notes() -> dict:
    """How each fact without codes is answered, and why some are not (fact_notes.json)."""
    return json.loads((_spec_dir() / "fact_notes.json").read_text(encoding="utf-8"))


def _code_key(code: str) -> tuple[str, str]:
    prefix, _, code_id = code.partition(":")
    return CODEBOOK_PREFIX[prefix], code_id


def _label(key: tuple[str, str]) -> str:
    return {v: k for k, v in CODEBOOK_PREFIX.items()}[key[0]] + ":" + key[1]


class _Graph:
    """Graph-side tables of one study, fetched once through named queries."""

    def __init__(self, kg: Mmkg, study_id: str):
        self.kg, self.study_id = kg, study_id
        studies = kg.query("studies")
        self.coder = studies.loc[studies["study_id"] == study_id, "analysis_coder"].iloc[0] or ""

    @cached_property
    def codings(self) -> pd.DataFrame:
        """Analysis codings with their passage (segment unit): participant_id, passage, key, segment."""
        from mmkg.analysis import fetch_passage_table

        table, self._direct = fetch_passage_table(self.kg, self.study_id)  # '' coder = the analysis codings
        codes = self.kg.query("code_index", study_id=self.study_id).set_index("code_uid")
        keys = list(zip(codes.loc[table["code_uid"], "codebook"], codes.loc[table["code_uid"], "code_id"]))
        return table.assign(key=keys)

    @cached_property
    def direct(self) -> set:
        self.codings  # noqa: B018 - fills _direct
        return {(q, self._key_of[a], self._key_of[b]) for q, a, b in self._direct}

    @cached_property
    def _key_of(self) -> dict:
        return dict(zip(self.codings["code_uid"], self.codings["key"]))

    @cached_property
    def passages(self) -> pd.DataFrame:
        """One row per passage: participant_id, codes (frozenset of keys), loose (not every two selections overlap)."""
        c = self.codings
        return c.groupby("passage").agg(participant_id=("participant_id", "first"), codes=("key", frozenset),
                                        loose=("loose", "first"))

    def together(self, passage: int, codes: set) -> bool:
        """Every two of `codes` co-occur in the passage (the segment unit's rule)."""
        row = self.passages.loc[passage]
        if not codes <= row["codes"]:
            return False
        if not row["loose"]:
            return True
        return all((passage, *sorted((a, b))) in self.direct for a in codes for b in codes if a < b)

    @cached_property
    def participant_codes(self) -> dict[str, frozenset]:
        people = self.participants.index
        sets = self.codings.groupby("participant_id")["key"].agg(frozenset)
        return {p: sets.get(p, frozenset()) for p in people}

    @cached_property
    def participants(self) -> pd.DataFrame:
        """The participants table: one row per participant id, one column per attribute ('' when missing)."""
        rows = self.kg.query("participants", study_id=self.study_id)
        table = pd.DataFrame([dict(a.split("=", 1) for a in attrs) for attrs in rows["attributes"]],
                             index=rows["participant_id"])
        return table.fillna("")

    @cached_property
    def sources(self) -> pd.DataFrame:
        return self.kg.query("sources", study_id=self.study_id)

    @cached_property
    def frequencies(self) -> dict:
        frame = self.kg.query("code_frequencies", study_id=self.study_id)
        return dict(zip(zip(frame["codebook"], frame["code_id"]), frame["codings"]))

    @cached_property
    def pairs(self) -> dict[frozenset, int]:
        rows = self.kg.query("cooccurrence", study_id=self.study_id, unit="segment")
        return {frozenset({(r.codebook_a, r.code_a), (r.codebook_b, r.code_b)}): int(r.n_ab)
                for r in rows.itertuples()}

    @cached_property
    def agreement(self) -> pd.DataFrame:
        return self.kg.query("agreement", study_id=self.study_id, level="codebook").set_index("codebook")

    @cached_property
    def codes(self) -> pd.DataFrame:
        return self.kg.query("codes", study_id=self.study_id)

    @cached_property
    def quotes(self) -> pd.DataFrame:
        return self.kg.query("quotes", study_id=self.study_id)

    def threat_map(self, source_kind: str) -> pd.DataFrame:
        return self.kg.query("threat_map", study_id=self.study_id, source_kind=source_kind).set_index("threat")


# --------------------------------------------------------------------------------------------- answers
class _Answer(dict):
    """graph_value, match, detail, query (and unit) of one fact."""


def _answer(value, match: bool, query: str, detail: str = "") -> _Answer:
    return _Answer(graph_value=value, match=bool(match), query=query, detail=detail)


def _holds(fact: dict, g: _Graph, person: str) -> bool:
    negated = {_code_key(c) for c in fact["negated_codes"]}
    positive = {_code_key(c) for c in fact["codes"]} - negated
    if fact.get("scope") == "segment":
        mine = g.passages[g.passages["participant_id"] == person]
        carrying = [q for q in mine.index if g.together(q, positive)]
        return bool(carrying) and not any(negated & mine.loc[q, "codes"] for q in carrying)
    carried = g.participant_codes.get(person, frozenset())
    if negated & carried:
        return False
    return bool(positive & carried) if fact["code_logic"] == "any" else positive <= carried


def _participant_fact(fact: dict, g: _Graph, holders: set, query: str, detail: str) -> _Answer:
    compare = COMPARATORS[fact["comparator"]]
    listed = {f"P{p}" for p in fact["participants"]}
    if fact["kind"] == "participants_list":
        n = len(listed & holders)
        ok = compare(n, fact["value"])
    else:
        n = len(holders)
        ok = compare(n, fact["value"]) and listed <= holders
    if fact["participants_complete"]:
        ok = ok and holders == listed
    return _answer(n, ok, query, detail)


def _by_code(fact: dict, g: _Graph) -> str:
    """Who carries each listed code (the fact is checked code by code)."""
    listed = [f"P{p}" for p in fact["participants"]]
    parts = []
    for code in fact["codes"]:
        key = _code_key(code)
        holders = sorted((p for p, s in g.participant_codes.items() if key in s), key=lambda p: int(p[1:]))
        if listed:
            parts.append(f"{code}: " + ", ".join(f"{p} {'yes' if p in holders else 'no'}" for p in listed))
        else:
            parts.append(f"{code}: {len(holders)} ({' '.join(holders)})")
    return "; ".join(parts)


def _coding_fact(fact: dict, g: _Graph) -> _Answer:
    compare = COMPARATORS[fact["comparator"]]
    codes = [_code_key(c) for c in fact["codes"]]
    negated = {_code_key(c) for c in fact["negated_codes"]}
    positive = set(codes) - negated
    kind = fact["kind"]
    if kind == "code_count_codings":
        counts = {_label(c): int(g.frequencies.get(c, 0)) for c in codes}
        shown = next(iter(counts.values())) if len(counts) == 1 else counts
        return _answer(shown, all(compare(n, fact["value"]) for n in counts.values()), "code_frequencies",
                       "; ".join(f"{k}: {v} codings" for k, v in counts.items()))
    if kind == "cooccurrence" and fact["unit"] == "codings":
        carrying = [q for q in g.passages.index
                    if g.together(q, positive) and not (negated & g.passages.loc[q, "codes"])]
        n = len(carrying)
        if len(positive) == 2 and not negated:  # n_ab of the named query
            n = g.pairs.get(frozenset(positive), 0)
            return _answer(n, compare(n, fact["value"]), "cooccurrence", "unit: segment (overlapping selections)")
        return _answer(n, compare(n, fact["value"]), "cooccurrence (passages)",
                       "passages where every two of the codes co-occur")
    holders = {p for p in g.participant_codes if _holds(fact, g, p)}
    scope = " in one passage" if fact.get("scope") == "segment" else ""
    return _participant_fact(fact, g, holders, "codings" + (" (passages)" if scope else ""),
                             _by_code(fact, g) + f"; holders{scope}: "
                             + " ".join(sorted(holders, key=lambda p: int(p[1:]))))


def _quote_fact(fact: dict, g: _Graph) -> _Answer:
    compare = COMPARATORS[fact["comparator"]]
    negated = {_code_key(c) for c in fact["negated_codes"]}
    positive = {_code_key(c) for c in fact["codes"]} - negated
    quoted = g.quotes[g.quotes["text"].str.contains(fact["quote_text"], regex=False)]
    segments = set(quoted["segment"])
    found = sorted(set(g.codings.loc[g.codings["segment"].isin(segments), "passage"]))
    good = [q for q in found if g.together(q, positive) and not (negated & g.passages.loc[q, "codes"])]
    codes = "; ".join(" ".join(sorted(_label(k) for k in g.passages.loc[q, "codes"])) for q in found)
    return _answer(len(good), bool(found) and compare(len(good), fact["value"]), "quotes",
                   f"passage(s) of the quote carry: {codes or 'nothing (quote not found)'}")


def _threat_map_fact(fact: dict, g: _Graph) -> _Answer:
    table = g.threat_map(fact["source_kind"])
    n = int(table.loc[fact["concept"], "participants"]) if fact["concept"] in table.index else 0
    return _answer(n, COMPARATORS[fact["comparator"]](n, fact["value"]), "threat_map",
                   f"counted in {table['counted_in'].iloc[0]} (the map's default)")


def _attribute_fact(fact: dict, rule: dict, g: _Graph) -> _Answer:
    table = g.participants

    def test(r: dict) -> pd.Series:
        column = table.get(r["column"], pd.Series("", index=table.index))
        return column != "" if r.get("nonempty") else column == r["equals"]

    rules = rule.get("all", [rule])
    mask = pd.concat([test(r) for r in rules], axis=1).all(axis=1)
    holders = set(table.index[mask])
    described = " and ".join(f"{r['column']} {'set' if r.get('nonempty') else '= ' + r['equals']}" for r in rules)
    detail = f"{described}: " + " ".join(sorted(holders, key=lambda p: int(p[1:])))
    if rule.get("excluded"):  # the listed participants are the ones outside the set
        listed = {f"P{p}" for p in fact["participants"]}
        ok = COMPARATORS[fact["comparator"]](len(holders), fact["value"]) and not (listed & holders)
        if fact["participants_complete"]:
            ok = ok and set(table.index) - holders == listed
        return _answer(len(holders), ok, "participants", detail)
    if rule.get("listed"):  # a fact about the listed participants: how many of them are in the set
        fact = {**fact, "kind": "participants_list"}
    return _participant_fact(fact, g, holders, "participants", detail)


def _row_expected(fact: dict) -> dict:
    """The Table 1 cells the transcription reconstructs for one row (its note), as participants-table values."""
    if "no questionnaire" in fact["quote"]:
        domain = fact["quote"].split(" ", 1)[1].split(" no questionnaire")[0]
        return {"domain": domain, "questionnaire": "false", "company": "", "experience_years": "",
                "ml_knowledge": "", "sec_knowledge": "", "aml_knowledge": "", "degree": ""}
    cells = dict(re.findall(r"(\w+)=('[^']*'|[^,.]+(?:\.\d+)?)", fact["note"].split("Reconstruction:")[1]))
    level = lambda v: KNOWLEDGE[v.strip("'")]  # noqa: E731
    return {"company": "" if cells["company"] == "None" else cells["company"], "domain": cells["domain"].strip(),
            "experience_years": float(cells["exp"]), "ml_knowledge": level(cells["ML"]),
            "sec_knowledge": level(cells["Sec"]), "aml_knowledge": level(cells["AML"]),
            "degree": cells["degree"].strip()}


def _statistic_fact(fact: dict, rule: dict, g: _Graph) -> _Answer:
    table = g.participants
    compare = COMPARATORS.get(fact["comparator"])
    kind = rule["statistic"]
    if kind in ("mean", "std"):
        values = pd.to_numeric(table[rule["column"]].replace("", None)).dropna()
        value = values.mean() if kind == "mean" else values.std(ddof=0)
        shown = round(float(value), 4)
        rounded = round(float(value), rule["digits"])
        ok = compare(int(rounded) if rule["digits"] == 0 else rounded, fact["value"])
        spread = f", sample STD {values.std(ddof=1):.3f}" if kind == "std" else ""
        return _answer(shown, ok, "participants",
                       f"{kind} of {rule['column']} over {len(values)} participants{spread}, rounded to "
                       f"{rule['digits']} digits: {rounded}")
    if kind == "max_id":
        numbers = sorted(int(p[1:]) for p in table.index)
        return _answer(max(numbers), compare(max(numbers), fact["value"]) and numbers == sorted(fact["participants"]),
                       "participants", "IDs: " + " ".join(f"P{n}" for n in numbers))
    if kind == "levels":
        levels = sorted({v for c in rule["columns"] for v in table[c] if v})
        return _answer(len(levels), compare(len(levels), fact["value"]), "participants", ", ".join(levels))
    if kind == "shared_companies":
        members = table[table[rule["column"]] != ""].groupby(rule["column"]).groups
        shared = {c: sorted(ids, key=lambda p: int(p[1:])) for c, ids in members.items() if len(ids) > 1}
        people = {p for ids in shared.values() for p in ids}
        ok = compare(len(shared), fact["value"]) and people == {f"P{p}" for p in fact["participants"]}
        return _answer(len(shared), ok, "participants", "; ".join(f"{c}: {' '.join(v)}" for c, v in shared.items()))
    if kind == "row":
        person = f"P{fact['participants'][0]}"
        expected = _row_expected(fact)
        got = {c: table.loc[person].get(c, "") for c in expected}
        if isinstance(expected.get("experience_years"), float):
            got["experience_years"] = float(got["experience_years"]) if got["experience_years"] else ""
        wrong = [c for c in expected if got[c] != expected[c]]
        value = got.get("experience_years") if fact["value"] is not None else None
        ok = not wrong and (fact["value"] is None or compare(value, fact["value"]))
        detail = "; ".join(f"{c}: {got[c]!r}" + ("" if c not in wrong else f" (expected {expected[c]!r})")
                           for c in expected)
        return _answer(value, ok, "participants", detail)
    raise ValueError(f"unknown statistic {kind} for {fact['id']}")


def _material_fact(fact: dict, rule: dict, g: _Graph) -> _Answer:
    if rule["count"] == "participants":
        n = len(g.participants)
        detail = "participants of the study"
    else:
        n = int((g.sources["kind"] == rule["kind"]).sum())
        detail = f"{rule['kind']} sources of the study"
    return _answer(n, COMPARATORS[fact["comparator"]](n, fact["value"]), "sources", detail)


def _operationalised_fact(fact: dict, rule: dict, g: _Graph) -> _Answer:
    if "left" in rule:  # no pair of these codes co-occurs in more than max_segments passages
        counts = {(a, b): g.pairs.get(frozenset({_code_key(a), _code_key(b)}), 0)
                  for a in rule["left"] for b in rule["right"]}
        worst = max(counts.values())
        pair = max(counts, key=counts.get)
        return _answer(worst, worst <= rule["max_segments"], "cooccurrence",
                       f"most: {pair[0]} with {pair[1]} in {worst} passage(s); read as at most {rule['max_segments']}")
    holders = set()
    for condition in rule["any_of"]:
        for person, codes in g.participant_codes.items():
            if "lacks" in condition and _code_key(condition["lacks"]) not in codes:
                holders.add(person)
            if "has" in condition and _code_key(condition["has"]) in codes:
                holders.add(person)
            if "has_group" in condition:
                book, group = _code_key(condition["has_group"])
                if any(k[0] == book and k[1].split(".")[0] == group for k in codes):
                    holders.add(person)
    described = " or ".join(", ".join(f"{k} {v}" for k, v in c.items()) for c in rule["any_of"])
    return _participant_fact(fact, g, holders, "codings",
                             f"{described}: " + " ".join(sorted(holders, key=lambda p: int(p[1:]))))


def _agreement_fact(fact: dict, g: _Graph) -> _Answer:
    table = g.agreement
    compare = COMPARATORS[fact["comparator"]]
    ident = fact["id"]
    if ident == "coding-two-coders":
        coders = str(table["coders"].iloc[0]).split(",")
        return _answer(len(coders), compare(len(coders), fact["value"]), "agreement", ", ".join(coders))
    if ident == "agree-kappa-threshold":
        kappas = {book: round(float(row["cohen_kappa"]), 3) for book, row in table.iterrows()}
        low = min(kappas.values())
        return _answer(low, compare(low, fact["value"]), "agreement",
                       "κ: " + ", ".join(f"{b} {k}" for b, k in kappas.items()) + " (passage × code presence)")
    book = "interview" if "interview" in ident else "drawing"
    row = table.loc[book]
    counts = {"agreed": int(row["both"]), "disagreed": int(row["only_a"] + row["only_b"]),
              "total": int(row["both"] + row["only_a"] + row["only_b"])}
    detail = (f"{book}: {counts['agreed']} (passage, code) pairs coded by both coders, {counts['disagreed']} by one; "
              f"{row['units']} passage × code units")
    if "kappa" in ident:
        kappa = round(float(row["cohen_kappa"]), 3)
        return _answer(kappa, compare(kappa, fact["value"]), "agreement", detail + " (passage × code presence)")
    which = next(k for k in ("disagreed", "agreed", "total") if ident.endswith(k) or f"-{k}-" in ident)
    if fact.get("reading"):
        detail += f"; reading {fact['reading']} is not the graph's"
    return _answer(counts[which], compare(counts[which], fact["value"]), "agreement", detail)


def _codebook_fact(fact: dict, g: _Graph) -> _Answer:
    codes = g.codes
    compare = COMPARATORS[fact["comparator"]]
    ident = fact["id"]
    codebook = "interview" if ("interview" in ident or "table2" in ident) else "drawing"
    mine = codes[codes["codebook"] == codebook]
    if fact["unit"] == "groups":
        n = int(mine["group_id"].nunique())
    elif "leaf" in ident:
        parents = set(mine["parent_code_id"].dropna())
        n = int((~mine["code_id"].isin(parents)).sum())
    else:
        n = len(mine)
    return _answer(n, compare(n, fact["value"]), "codes", f"{codebook} codebook")


def answer(fact: dict, g: _Graph, notes: dict) -> _Answer | str:
    """The graph's answer to one fact, or why the graph cannot answer it."""
    ident = fact["id"]
    if fact.get("answerable") is False:
        return fact.get("revision", "")
    if ident in notes["not_answerable"]:
        return notes["not_answerable"][ident]
    for name, handler in (("attribute_facts", _attribute_fact), ("statistics", _statistic_fact),
                          ("material", _material_fact), ("operationalised", _operationalised_fact)):
        if ident in notes.get(name, {}):
            return handler(fact, notes[name][ident], g)
    if fact["comparator"] is None:
        return "qualitative: the paper gives no figure to compare"
    if fact["kind"] in CODING_KINDS and fact["codes"]:
        return _coding_fact(fact, g)
    handlers = {"quote": _quote_fact, "threat_map": _threat_map_fact, "agreement": _agreement_fact,
                "codebook": _codebook_fact}
    if fact["kind"] in handlers:
        return handlers[fact["kind"]](fact, g)
    return "no rule of mmkg.paper answers this kind of fact"


def _note(fact: dict, answered, notes: dict) -> str:
    """Why a fact does not match (or is read as it is): the recorded note, the reading, κ, the revision."""
    parts = [notes["notes"].get(fact["id"], "")]
    mismatch = isinstance(answered, _Answer) and not answered["match"]
    if mismatch and not parts[0] and not fact.get("reading") and "kappa" not in fact["id"]:
        parts.append("Transcription: " + (fact.get("note") or ""))
    if fact.get("reading"):
        parts.append(READING_NOTE)
    if "kappa" in fact["id"] and isinstance(answered, _Answer) and not answered["match"]:
        parts.append(KAPPA_NOTE)
    if fact.get("revision"):
        parts.append("Revised: " + fact["revision"])
    return " ".join(p for p in parts if p)


def founding_study_id() -> str:
    """The id of the shipped founding study (its study.json), the study the paper's figures are about."""
    from mmkg.loader import shipped_study_path

    return json.loads((shipped_study_path() / "study.json").read_text(encoding="utf-8"))["id"]


def paper_vs_graph(kg: Mmkg, study_id: str | None = None) -> pd.DataFrame:
    """One row per fact of the transcription and of its revisions (`COLUMNS`): the paper's value, the graph's
    value, whether they match (None: the graph cannot answer, `status` 'not answerable' and the reason in
    `note`), how the graph answered (`detail`, `query`), and why a fact does not match or is read as it is.
    The figures are the founding paper's, so `study_id` (None: the shipped founding study's id) names the
    study that holds its data; a store without it is a `NotFoundError` that says how to load it."""
    study_id = study_id or founding_study_id()
    if study_id not in kg.study_ids():
        from mmkg.errors import NotFoundError

        raise NotFoundError(f"the paper's figures are compared with the founding study, and the store holds no "
                            f"study '{study_id}' (studies: {', '.join(kg.study_ids()) or 'none'}): load it with "
                            "`mmkg load` with no file (Python: kg.load()), or name the study that holds the "
                            "founding data (--study, study_id)")
    g = _Graph(kg, study_id)
    notes = fact_notes()
    rows = []
    for fact in paper_facts():
        answered = answer(fact, g, notes)
        base = {"id": fact["id"], "section": fact["section"], "kind": fact["kind"],
                "confidence": fact["confidence"], "paper_value": fact["value"], "comparator": fact["comparator"],
                "unit": fact["unit"]}
        if isinstance(answered, str):
            rows.append({**base, "graph_value": None, "match": None, "status": "not answerable", "detail": "",
                         "query": "", "note": answered})
            continue
        rows.append({**base, "graph_value": answered["graph_value"], "match": answered["match"],
                     "status": "match" if answered["match"] else "mismatch", "detail": answered["detail"],
                     "query": answered["query"], "note": _note(fact, answered, notes)})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("paper_value", "graph_value", "match"):  # keep 6 as 6 beside 0.71, None as None
        frame[column] = pd.Series([row[column] for row in rows], dtype=object)
    return frame

