"""Generate the founding study (`studies/founding/`) from the spec shipped in `studies/founding_spec/`.

The codebooks (Tables 2 and 3) and the participants (Table 1) are the paper's.  The codings are a
*reconstruction*: a deterministic, seeded construction that reproduces the aggregate figures the paper
publishes (Sections 3.4-4.3, Appendix F; `founding_spec/paper-facts.json`), not the authors' data.

    python -m mmkg.studies.generate_founding --out DIR [--seed N]

Same seed -> byte-identical files.  Everything the generator reads lives in `founding_spec/`:

* `codebooks.json`           Tables 2 and 3 as printed (+ the two group-header codes, see PROVENANCE.md)
* `participants.json`        Table 1 with the reconstructed knowledge cells
* `plan.json`                per code: which participants carry it and how often (fixed or drawn)
* `designed_segments.json`   published quotes and the code combinations the paper's counts require
* `paper-facts.json`         the figures the reconstruction targets (copy of shared/paper/paper-facts.json)
* `fact_notes.json`          per fact: why it is or is not reproduced
* `PROVENANCE.template.md`   the hand-written part of PROVENANCE.md

Construction (consensus first, then the two coders):
1. Every code gets a participant set (fixed by the plan where the paper constrains it, otherwise a seeded
   sample) and a per-participant number of codings; codes whose coding counts the paper states exactly
   (model stealing, code breach, ...) get codings only from designed segments.
2. The totals are brought to the target consensus sizes by adding/removing repeat codings of
   unconstrained codes (participant sets never change in this step).
3. Designed segments are placed; the remaining code applications are packed 1-3 per segment, never putting
   an AML attack (I:A.*) and a security threat (I:C.*) on one segment, so every such co-occurrence is a
   designed one (the paper counts them).
4. coder1/coder2: a seeded sample of the consensus pairs is given to one coder only (accepted in the
   consensus discussion); the remaining agreed pairs are coded by both; further single-coder pairs that the
   consensus rejected are added until the paper's agreement figures hold (989 both / 136 one, interviews;
   233 both / 42 one = 275 in total, drawings).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
from collections import defaultdict
from pathlib import Path

SPEC_DIR = Path(__file__).resolve().with_name("founding_spec")
DEFAULT_SEED = 35637
CODERS = ("coder1", "coder2")
CONSENSUS = "consensus"
BOOK_PREFIX = {"interview": "I", "drawing": "D"}
PREFIX_BOOK = {"I": "interview", "D": "drawing"}
CANVAS = (1600, 900)

STUDY_META = {
    "id": "founding",
    "title": "Industrial practitioners' mental models of adversarial machine learning",
    "description": (
        "The founding study of mmkg: a qualitative study of 15 industrial machine-learning practitioners' "
        "mental models of the ML pipeline and of (adversarial) ML security, from semi-structured interviews "
        "with drawing tasks. Two codebooks: interview (Appendix E, Table 2; 12 groups A-L) and drawing "
        "(Table 3; 5 groups A-E). Participants from Table 1. One interview source and one drawing source per "
        "participant; segments are synthetic and carry only the participants' words the paper publishes."
    ),
    "citation": (
        "Lukas Bieringer, Kathrin Grosse, Michael Backes, Battista Biggio, Katharina Krombholz. "
        "Industrial practitioners' mental models of adversarial machine learning. Eighteenth Symposium on "
        "Usable Privacy and Security (SOUPS 2022), USENIX, Boston, MA, August 2022. arXiv:2105.03726."
    ),
    "provenance": (
        "Codebooks and participants from the paper; codings are a seeded reconstruction generated to match "
        "its published figures - not the authors' data."
    ),
    "codebooks": ["interview", "drawing"],
    "analysis_coder": CONSENSUS,
    "participant_attributes": {
        "company": "string",
        "domain": "string",
        "domain_as_printed": "string",
        "experience_years": "float",
        "ml_knowledge": "string",
        "sec_knowledge": "string",
        "aml_knowledge": "string",
        "degree": "string",
        "questionnaire": "bool",
        "works_in_security": "bool",
        "ml_knowledge_any": "bool",
        "sec_knowledge_any": "bool",
        "aml_knowledge_any": "bool",
        "table1_uncertain_cells": "string",
    },
}
KNOWLEDGE = {"++": "lectures", "+": "self_study", "": "none"}
PARTICIPANT_COLUMNS = ["participant_id", "label"] + list(STUDY_META["participant_attributes"])


# ----------------------------------------------------------------------------------------------- helpers
def code_key(code_id: str):
    """Natural order of code ids: H < H.1 < H.2 < I; A.2 < A.10."""
    parts = code_id.split(".")
    return (parts[0],) + tuple(int(x) for x in parts[1:])


def pid(p: int) -> str:
    return f"P{p}"


def load_spec(spec_dir: Path = SPEC_DIR) -> dict:
    spec = {}
    for name in ("codebooks", "participants", "plan", "designed_segments", "paper-facts", "fact_notes"):
        spec[name] = json.loads((spec_dir / f"{name}.json").read_text(encoding="utf-8"))
    spec["provenance_template"] = (spec_dir / "PROVENANCE.template.md").read_text(encoding="utf-8")
    return spec


def codebook_codes(spec: dict) -> dict[str, list[dict]]:
    """codebook -> list of code dicts (code_id, label, group_id, parent_code_id, preferred_label, definition)."""
    out: dict[str, list[dict]] = {}
    headers = {(h["group_id"], b): h for b, hs in spec["codebooks"]["group_header_codes"].items() for h in hs}
    for book, groups in spec["codebooks"]["codebooks"].items():
        rows = []
        for g in groups:
            header = headers.get((g["group_id"], book))
            if header:
                rows.append({"code_id": header["code_id"], "label": header["label"], "group_id": g["group_id"],
                             "parent_code_id": "", "preferred_label": "", "definition": header["definition"]})
            for c in g["codes"]:
                rows.append({"code_id": c["code_id"], "label": c["label"], "group_id": g["group_id"],
                             "parent_code_id": header["code_id"] if header else "",
                             "preferred_label": c.get("preferred_label", ""), "definition": ""})
        out[book] = sorted(rows, key=lambda r: code_key(r["code_id"]))
    return out


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")


def fmt_bool(v) -> str:
    return "" if v is None else ("true" if v else "false")


def fmt_num(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, (int,)) or float(v).is_integer():
        return str(int(v))
    return f"{v:.3f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------------------------------ participants
def participant_rows(spec: dict) -> list[dict]:
    rows = []
    for p in spec["participants"]["participants"]:
        known = p["questionnaire"]

        def level(field):
            return KNOWLEDGE[p[field]] if known else None

        def any_(field):
            return fmt_bool((p[field] != "") if known else None)

        uncertain = [f for f in p["uncertain_fields"]]
        rows.append({
            "participant_id": pid(p["id"]), "label": pid(p["id"]),
            "company": p["company"] or "", "domain": p["domain"], "domain_as_printed": p["domain_as_printed"],
            "experience_years": "" if p["experience_years"] is None else f"{float(p['experience_years']):.1f}",
            "ml_knowledge": level("ml") or "", "sec_knowledge": level("sec") or "",
            "aml_knowledge": level("aml") or "", "degree": p["degree"] or "",
            "questionnaire": fmt_bool(p["questionnaire"]),
            "works_in_security": fmt_bool(p["domain"] == "Cybersecurity"),
            "ml_knowledge_any": any_("ml"), "sec_knowledge_any": any_("sec"), "aml_knowledge_any": any_("aml"),
            "table1_uncertain_cells": ";".join(uncertain),
        })
    return rows


# ------------------------------------------------------------------------------------------------- plan
def plan_counts(spec: dict, codes: dict[str, list[dict]], rng: random.Random):
    """Return counts[book][(p, code)] = number of consensus codings, and the designed segments per book."""
    plan = spec["plan"]
    people = plan["participants"]
    named_sets = {k: v["members"] for k, v in plan["sets"].items()}
    designed = spec["designed_segments"]
    counts: dict[str, dict[tuple[int, str], int]] = {}
    for book in ("interview", "drawing"):
        dcount: dict[tuple[int, str], int] = defaultdict(int)
        for seg in designed[book]:
            for c in seg["codes"]:
                dcount[(seg["p"], c)] += 1
        book_plan = plan[book]
        cnt: dict[tuple[int, str], int] = {}
        for code in codes[book]:
            cid = code["code_id"]
            cp = book_plan.get(cid)
            if cp is None:
                raise ValueError(f"plan.json has no entry for {book} code {cid}")
            designed_people = sorted({p for (p, c) in dcount if c == cid})
            if cp.get("designed_only"):
                members = designed_people
            elif "exact" in cp:
                members = sorted(cp["exact"])
            else:
                allowed = named_sets[cp["allowed"]] if "allowed" in cp else people
                allowed = [p for p in allowed if p not in cp.get("exclude", [])]
                include = sorted(set(cp.get("include", [])) | set(designed_people))
                pool = [p for p in sorted(allowed) if p not in include]
                extra = rng.sample(pool, max(0, cp["n"] - len(include)))
                members = sorted(include + extra)
            bad = [p for p in designed_people if p not in members]
            if bad:
                raise ValueError(f"designed segments put {book} {cid} on {bad}, outside its planned set")
            for p in members:
                if cp.get("designed_only"):
                    n = dcount[(p, cid)]
                elif cp.get("global"):
                    n = 1
                else:
                    lo, hi = cp["per"]
                    n = max(dcount.get((p, cid), 0), rng.randint(lo, hi))
                cnt[(p, cid)] = n
        counts[book] = cnt
    _fix_coverage(spec, counts, rng)
    return counts


def _fix_coverage(spec, counts, rng):
    """Every participant with a defense has a security defense code; every drawing with attacks has an
    attack code and a depiction code.  Raises if the plan breaks a set constraint it cannot repair."""
    sets = {k: v["members"] for k, v in spec["plan"]["sets"].items()}
    iv = counts["interview"]
    d_codes = [f"D.{i}" for i in range(1, 8)]
    b_codes = [f"B.{i}" for i in range(1, 8)]
    for p in spec["plan"]["participants"]:
        has_d = any((p, c) in iv for c in d_codes)
        has_b = any((p, c) in iv for c in b_codes)
        if p in sets["defense_any"] and not has_d:
            iv[(p, rng.choice(d_codes))] = 1
        if p not in sets["defense_any"] and (has_d or has_b):
            raise ValueError(f"P{p} has a defense code but is outside defense_any")
        if has_b != (p in sets["aml_defense"]):
            raise ValueError(f"P{p}: AML defense codes disagree with the aml_defense set")
    dr = counts["drawing"]
    attack = [f"D.{i}" for i in (2, 3, 4, 5, 6, 7, 8, 10, 11)]
    depiction = [f"E.{i}" for i in (6, 7, 8, 9)]
    for p in spec["plan"]["participants"]:
        has_a = any((p, c) in dr for c in attack)
        has_dep = any((p, c) in dr for c in depiction)
        draws = p in sets["drawing_attacks"]
        if draws != has_a or draws != has_dep or draws == ((p, "D.1") in dr):
            raise ValueError(f"P{p}: drawing attack codes inconsistent with drawing_attacks / D.1")


def adjust_totals(spec, counts, rng):
    """Add/remove repeat codings of unconstrained codes until each codebook's consensus total hits its target."""
    plan = spec["plan"]
    dcount = defaultdict(int)
    for book in ("interview", "drawing"):
        for seg in spec["designed_segments"][book]:
            for c in seg["codes"]:
                dcount[(book, seg["p"], c)] += 1
    for book, cap, elastic_re in (("interview", 6, r".*"), ("drawing", 3, r"^A\.")):
        target = plan["targets"][book]["consensus"]
        cnt = counts[book]
        elastic = sorted(
            (k for k in cnt
             if re.match(elastic_re, k[1])
             and not plan[book][k[1]].get("designed_only") and not plan[book][k[1]].get("global")),
            key=lambda k: (k[0], code_key(k[1])))
        total = sum(cnt.values())
        guard = 0
        while total != target:
            guard += 1
            if guard > 100000:
                raise RuntimeError(f"cannot reach the {book} target {target}")
            k = rng.choice(elastic)
            if total < target and cnt[k] < cap:
                cnt[k] += 1
                total += 1
            elif total > target and cnt[k] > max(1, dcount[(book,) + k]):
                cnt[k] -= 1
                total -= 1


# --------------------------------------------------------------------------------------------- segments
def _interview_conflict(a: str, b: str) -> bool:
    ga, gb = a.split(".")[0], b.split(".")[0]
    return {ga, gb} == {"A", "C"}


def pack(apps: list[str], rng: random.Random, conflict) -> list[list[str]]:
    """Greedy packing of code applications into segments of 1-3 codes (no duplicate, no conflicting pair)."""
    pending = list(apps)
    segs = []
    while pending:
        size = rng.choices((1, 2, 3), weights=(45, 35, 20))[0]
        seg = [pending.pop(0)]
        i = 0
        while len(seg) < size and i < len(pending):
            c = pending[i]
            if c not in seg and not any(conflict(c, s) for s in seg):
                seg.append(pending.pop(i))
            else:
                i += 1
        segs.append(seg)
    return segs



def _take_designed(designed: list[dict], p: int, remaining: dict, book: str) -> list[dict]:
    """Participant p's hand-designed segments of one codebook, their codes taken from `remaining`."""
    segs = []
    for seg in designed:
        if seg["p"] != p:
            continue
        for c in seg["codes"]:
            remaining[c] -= 1
        segs.append({"codes": list(seg["codes"]), "text": seg.get("text", ""), "section": seg.get("section", "")})
    if any(v < 0 for v in remaining.values()):
        raise ValueError(f"P{p}: designed {book} segments exceed planned counts")
    return segs

def build_segments(spec, counts, rng):
    """Return (segments, consensus) where segments is a list of dicts and consensus a list of (seg_id, book, code)."""
    plan = spec["plan"]
    designed = spec["designed_segments"]
    segments, consensus = [], []
    for p in plan["participants"]:
        # ---- interview
        cnt = counts["interview"]
        remaining = {c: n for (q, c), n in cnt.items() if q == p}
        segs = _take_designed(designed["interview"], p, remaining, "interview")
        apps = [c for c in sorted(remaining, key=code_key) for _ in range(remaining[c])]
        rng.shuffle(apps)
        segs += [{"codes": s, "text": "", "section": ""} for s in pack(apps, rng, _interview_conflict)]
        rng.shuffle(segs)
        cursor = rng.randint(0, 400)
        src = f"{pid(p)}-interview"
        for i, s in enumerate(segs, 1):
            length = len(s["text"]) if s["text"] else rng.randint(60, 900)
            sid = f"{pid(p)}-I{i:03d}"
            segments.append({"segment_id": sid, "source_id": src, "start": cursor, "end": cursor + length,
                             "x": "", "y": "", "width": "", "height": "", "synthetic": "true",
                             "text": s["text"], "text_section": s["section"]})
            consensus += [(sid, "interview", c) for c in sorted(s["codes"], key=code_key)]
            cursor += length + rng.randint(50, 2500)
        # ---- drawing
        dplan = plan["drawing"]
        cnt = counts["drawing"]
        remaining = {c: n for (q, c), n in cnt.items() if q == p}
        dsegs: list[dict] = []
        glob = sorted((c for c in remaining if dplan[c].get("global")), key=code_key)
        for c in glob:
            remaining[c] -= 1
        dsegs.append({"codes": glob, "text": "", "section": "", "whole": True})
        dsegs += _take_designed(designed["drawing"], p, remaining, "drawing")

        def take(pred):
            out = [c for c in sorted(remaining, key=code_key) if pred(c) for _ in range(remaining[c])]
            rng.shuffle(out)
            return out

        attacks = take(lambda c: c.startswith("D.") and c not in ("D.1", "D.9"))
        depict = take(lambda c: dplan[c].get("depiction", False))
        elements = take(lambda c: c.startswith("A."))
        named = take(lambda c: c.startswith("C."))
        defenses = take(lambda c: c == "D.9")

        def add_element(codes):
            for j, e in enumerate(elements):
                if e not in codes:
                    codes.append(elements.pop(j))
                    return

        for a in attacks:
            codes = [a]
            if depict:
                codes.append(depict.pop(0))
            if rng.random() < 0.5:
                add_element(codes)
            dsegs.append({"codes": codes, "text": "", "section": ""})
        for d in depict:
            codes = [d]
            add_element(codes)
            dsegs.append({"codes": codes, "text": "", "section": ""})
        for d in defenses:
            codes = [d]
            if rng.random() < 0.7:
                add_element(codes)
            dsegs.append({"codes": codes, "text": "", "section": ""})
        for n_ in named:
            codes = [n_]
            if rng.random() < 0.3:
                add_element(codes)
            dsegs.append({"codes": codes, "text": "", "section": ""})
        for e in elements:
            dsegs.append({"codes": [e], "text": "", "section": ""})
        whole, rest = dsegs[0], dsegs[1:]
        rng.shuffle(rest)
        src = f"{pid(p)}-drawing"
        for i, s in enumerate([whole] + rest, 1):
            sid = f"{pid(p)}-D{i:03d}"
            if s.get("whole"):
                x, y, w, h = 0, 0, CANVAS[0], CANVAS[1]
            else:
                w, h = rng.randint(80, 400), rng.randint(50, 250)
                x, y = rng.randint(0, CANVAS[0] - w), rng.randint(0, CANVAS[1] - h)
            segments.append({"segment_id": sid, "source_id": src, "start": "", "end": "",
                             "x": x, "y": y, "width": w, "height": h, "synthetic": "true",
                             "text": s["text"], "text_section": s["section"]})
            consensus += [(sid, "drawing", c) for c in sorted(s["codes"], key=code_key)]
    return segments, consensus


# ---------------------------------------------------------------------------------------------- coders
def derive_coders(spec, segments, consensus, rng):
    """Split consensus pairs into agreed / single-coder-accepted and add single-coder-rejected pairs."""
    plan = spec["plan"]
    seg_participant = {s["segment_id"]: int(s["source_id"].split("-")[0][1:]) for s in segments}
    seg_book = {s["segment_id"]: ("interview" if s["source_id"].endswith("interview") else "drawing")
                for s in segments}
    rows = []
    for book in ("interview", "drawing"):
        tgt = plan["targets"][book]
        pairs = sorted(((s, c) for (s, b, c) in consensus if b == book), key=lambda x: (x[0], code_key(x[1])))
        n_accept = len(pairs) - tgt["agreed"]
        n_reject = tgt["single_coder"] - n_accept
        if n_accept < 0 or n_reject < 0:
            raise ValueError(f"{book}: consensus size {len(pairs)} incompatible with the agreement targets")
        accepted = set(rng.sample(pairs, n_accept))
        present = set(pairs)
        by_seg = defaultdict(list)
        for s, c in pairs:
            by_seg[s].append(c)
        p_codes = defaultdict(set)
        for s, c in pairs:
            p_codes[seg_participant[s]].add(c)
        candidates = []
        for s in sorted(by_seg):
            if seg_book[s] != book:
                continue
            for c in sorted(p_codes[seg_participant[s]], key=code_key):
                cp = plan[book][c]
                if (s, c) in present or cp.get("designed_only") or cp.get("global") or c == "D.1":
                    continue
                if book == "interview" and any(_interview_conflict(c, o) for o in by_seg[s]):
                    continue
                candidates.append((s, c))
        rejected = rng.sample(candidates, n_reject)
        for s, c in pairs:
            rows.append((s, book, c, CONSENSUS))
            if (s, c) in accepted:
                rows.append((s, book, c, rng.choice(CODERS)))
            else:
                rows += [(s, book, c, CODERS[0]), (s, book, c, CODERS[1])]
        for s, c in rejected:
            rows.append((s, book, c, rng.choice(CODERS)))
    return rows


# ---------------------------------------------------------------------------------------------- metrics
def cohen_kappa_presence(units: int, set1: set, set2: set) -> dict:
    a = len(set1 & set2)
    b = len(set1 - set2)
    c = len(set2 - set1)
    d = units - a - b - c
    po = (a + d) / units
    pe = ((a + b) * (a + c) + (c + d) * (b + d)) / units ** 2
    return {"units": units, "both": a, "only1": b, "only2": c, "neither": d, "p_o": po, "p_e": pe,
            "kappa": (po - pe) / (1 - pe), "agreement_of_coded": a / (a + b + c)}


def agreement_stats(segments, codings, codes):
    seg_book = {s["segment_id"]: ("interview" if s["source_id"].endswith("interview") else "drawing")
                for s in segments}
    seg_p = {s["segment_id"]: s["source_id"].split("-")[0] for s in segments}
    out = {}
    for book in ("interview", "drawing"):
        n_seg = sum(1 for s in seg_book.values() if s == book)
        n_codes = sum(1 for c in codes[book])
        sets = {k: {(s, c) for (s, b, c, k2) in codings if b == book and k2 == k} for k in CODERS}
        seg_level = cohen_kappa_presence(n_seg * n_codes, sets[CODERS[0]], sets[CODERS[1]])
        psets = {k: {(seg_p[s], c) for (s, c) in v} for k, v in sets.items()}
        n_p = len(set(seg_p.values()))
        part_level = cohen_kappa_presence(n_p * n_codes, psets[CODERS[0]], psets[CODERS[1]])
        out[book] = {"segments": n_seg, "codes": n_codes, "segment_x_code": seg_level,
                     "participant_x_code": part_level,
                     "consensus_codings": sum(1 for (s, b, c, k) in codings if b == book and k == CONSENSUS)}
    return out


# ------------------------------------------------------------------------------------------------ facts
def _split(code: str):
    prefix, cid = code.split(":", 1)
    return PREFIX_BOOK[prefix], cid


def compare(x, comparator, value) -> bool:
    if comparator == "==":
        return x == value
    if comparator == ">=":
        return x >= value
    if comparator == ">":
        return x > value
    if comparator == "<":
        return x < value
    if comparator == "approx":
        return abs(x - value) < 0.5
    raise ValueError(comparator)


def evaluate_fact(f, seg_codes, part_codes, people):
    """Generator-side evaluation of one coding fact (the test suite re-implements this independently).

    seg_codes: {segment_id: set of 'I:A.3'-style codes} (consensus); part_codes: {participant: set of codes}.
    Returns (value_in_reconstruction, ok) or None when the fact carries no codes / no comparator.
    """
    kind, codes, neg = f["kind"], f["codes"], set(f["negated_codes"])
    pos = [c for c in codes if c not in neg]
    logic = f["code_logic"]
    if not codes or f["comparator"] is None:
        return None

    def has(pcodes):
        if neg & pcodes:
            return False
        if logic in ("all", "each", "single"):
            return all(c in pcodes for c in pos)
        return any(c in pcodes for c in pos)  # any / candidates

    if kind == "code_count_codings":
        vals = [sum(1 for s in seg_codes.values() if c in s) for c in codes]
        return (vals if len(vals) > 1 else vals[0]), all(compare(v, f["comparator"], f["value"]) for v in vals)
    if kind == "cooccurrence" and f["unit"] == "codings":
        v = sum(1 for s in seg_codes.values() if all(c in s for c in pos) and not (neg & s))
        return v, compare(v, f["comparator"], f["value"])
    holders = {p for p in people if has(part_codes.get(p, set()))}
    listed = {pid(p) for p in f["participants"]}
    if kind in ("code_count_participants", "cooccurrence"):
        v = len(holders)
        ok = compare(v, f["comparator"], f["value"]) and listed <= holders
        if f["participants_complete"]:
            ok = ok and holders == listed
        return v, ok
    if kind == "participants_list":
        v = len(listed & holders)
        ok = compare(v, f["comparator"], f["value"])
        if f["participants_complete"]:
            ok = ok and holders == listed
        return v, ok
    return None


CODING_KINDS = ("code_count_codings", "code_count_participants", "cooccurrence", "participants_list")


def evaluate_facts(spec, segments, codings, participants):
    seg_codes = defaultdict(set)
    seg_p = {s["segment_id"]: s["source_id"].split("-")[0] for s in segments}
    part_codes = defaultdict(set)
    for s, b, c, k in codings:
        if k == CONSENSUS:
            code = f"{BOOK_PREFIX[b]}:{c}"
            seg_codes[s].add(code)
            part_codes[seg_p[s]].add(code)
    people = [r["participant_id"] for r in participants]
    attr = spec["fact_notes"]["attribute_facts"]
    ops = spec["fact_notes"]["operationalised"]
    results = []
    for f in spec["paper-facts"]:
        if f["kind"] not in CODING_KINDS:
            continue
        if f["id"] in attr:
            a = attr[f["id"]]
            holders = {r["participant_id"] for r in participants if r[a["column"]] == a["equals"]}
            v = len({pid(p) for p in f["participants"]} & holders)
            r = (v, compare(v, f["comparator"], f["value"]))
        elif f["id"] in ops:
            o = ops[f["id"]]
            worst = max(sum(1 for s in seg_codes.values() if a in s and b in s)
                        for a in o["left"] for b in o["right"])
            r = (worst, worst <= o["max_segments"])
        else:
            r = evaluate_fact(f, seg_codes, part_codes, people)
        results.append((f, r))
    return results


# ------------------------------------------------------------------------------------------ provenance
def _fmt_val(v):
    if isinstance(v, list):
        return "/".join(fmt_num(x) for x in v)
    return fmt_num(v)


def provenance_md(spec, results, stats, participants, seed):
    notes = spec["fact_notes"]["notes"]
    lines = ["| fact | kind | conf. | codes | paper | reconstruction | status |", "|---|---|---|---|---|---|---|"]
    tally = defaultdict(lambda: [0, 0])
    not_repro = []
    for f, r in results:
        codes = " ".join(f["codes"]) + (" (not " + " ".join(f["negated_codes"]) + ")" if f["negated_codes"] else "")
        paper = "qualitative" if f["comparator"] is None else f"{f['comparator']} {fmt_num(f['value'])}"
        note = notes.get(f["id"], "")
        if r is None:
            got, status = "-", "not a coding figure" + (f": {note}" if note else "")
        else:
            got = _fmt_val(r[0])
            status = ("reproduced" + (f" ({note})" if note else "")) if r[1] else f"**not reproduced**: {note}"
            tally[f["confidence"]][1] += 1
            tally[f["confidence"]][0] += int(r[1])
            if not r[1]:
                not_repro.append(f["id"])
        unit = f" {f['unit']}" if f["unit"] else ""
        lines.append(f"| `{f['id']}` ({f['section']}) | {f['kind']} | {f['confidence']} | {codes} | "
                     f"{paper}{unit} | {got} | {status} |")
    summary = (f"- exact coding figures reproduced: **{tally['exact'][0]} of {tally['exact'][1]}**\n"
               f"- interpretation coding figures reproduced: **{tally['interpretation'][0]} of "
               f"{tally['interpretation'][1]}** (not reproduced: {', '.join(f'`{x}`' for x in not_repro) or 'none'})")
    kl = ["| codebook | segments | codes | units | both | coder1 only | coder2 only | percent agreement on coded pairs "
          "| Cohen's κ (segment × code) | Cohen's κ (participant × code) | paper κ |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    paper_k = {"interview": "0.71", "drawing": "0.85"}
    for book in ("interview", "drawing"):
        s = stats[book]
        g, pl = s["segment_x_code"], s["participant_x_code"]
        kl.append(f"| {book} | {s['segments']} | {s['codes']} | {g['units']} | {g['both']} | {g['only1']} | "
                  f"{g['only2']} | {g['agreement_of_coded']:.3f} | {g['kappa']:.3f} | {pl['kappa']:.3f} | "
                  f"{paper_k[book]} |")
    text = spec["provenance_template"]
    repl = {
        "{{SEED}}": str(seed),
        "{{FACT_SUMMARY}}": summary,
        "{{FACT_TABLE}}": "\n".join(lines),
        "{{KAPPA_TABLE}}": "\n".join(kl),
        "{{INTERVIEW_CONSENSUS}}": str(stats["interview"]["consensus_codings"]),
        "{{DRAWING_CONSENSUS}}": str(stats["drawing"]["consensus_codings"]),
        "{{INTERVIEW_SEGMENTS}}": str(stats["interview"]["segments"]),
        "{{DRAWING_SEGMENTS}}": str(stats["drawing"]["segments"]),
        "{{INTERVIEW_KAPPA}}": f"{stats['interview']['segment_x_code']['kappa']:.3f}",
        "{{DRAWING_KAPPA}}": f"{stats['drawing']['segment_x_code']['kappa']:.3f}",
        "{{INTERVIEW_PKAPPA}}": f"{stats['interview']['participant_x_code']['kappa']:.3f}",
        "{{DRAWING_PKAPPA}}": f"{stats['drawing']['participant_x_code']['kappa']:.3f}",
    }
    for k, v in repl.items():
        text = text.replace(k, v)
    return text, tally, not_repro


# ------------------------------------------------------------------------------------------------- main
def generate(out_dir, seed: int = DEFAULT_SEED, spec_dir: Path | str = SPEC_DIR) -> dict:
    """Write the founding study folder into `out_dir`; return a summary (agreement, fact tallies)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = load_spec(Path(spec_dir))
    rng = random.Random(seed)
    codes = codebook_codes(spec)

    # study.json
    (out / "study.json").write_text(json.dumps(STUDY_META, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8", newline="")
    # groups / codes
    groups = []
    for book in sorted(spec["codebooks"]["codebooks"]):
        for g in spec["codebooks"]["codebooks"][book]:
            groups.append({"codebook": book, "group_id": g["group_id"], "label": g["label"], "parent_group_id": ""})
    write_csv(out / "groups.csv", ["codebook", "group_id", "label", "parent_group_id"], groups)
    code_rows = [dict(r, codebook=book, codable="true") for book in sorted(codes) for r in codes[book]]
    write_csv(out / "codes.csv", ["codebook", "code_id", "label", "group_id", "parent_code_id", "codable",
                                  "preferred_label", "definition"], code_rows)
    # participants / sources
    participants = participant_rows(spec)
    write_csv(out / "participants.csv", PARTICIPANT_COLUMNS, participants)
    sources = []
    for r in participants:
        sources.append({"source_id": f"{r['participant_id']}-drawing", "participant_id": r["participant_id"],
                        "kind": "drawing", "title": f"Drawing of {r['participant_id']} (digital whiteboard)"})
        sources.append({"source_id": f"{r['participant_id']}-interview", "participant_id": r["participant_id"],
                        "kind": "interview", "title": f"Interview with {r['participant_id']} (transcript not public)"})
    sources.sort(key=lambda r: (int(r["participant_id"][1:]), r["kind"]))
    write_csv(out / "sources.csv", ["source_id", "participant_id", "kind", "title"], sources)

    # codings
    counts = plan_counts(spec, codes, rng)
    adjust_totals(spec, counts, rng)
    segments, consensus = build_segments(spec, counts, rng)
    codings = derive_coders(spec, segments, consensus, rng)

    def seg_key(sid):
        p, rest = sid.split("-")
        return (int(p[1:]), rest)

    segments.sort(key=lambda s: seg_key(s["segment_id"]))
    write_csv(out / "segments.csv", ["segment_id", "source_id", "start", "end", "x", "y", "width", "height",
                                     "synthetic", "text", "text_section"], segments)
    coder_order = {CONSENSUS: 0, CODERS[0]: 1, CODERS[1]: 2}
    codings.sort(key=lambda r: (seg_key(r[0]), r[1], code_key(r[2]), coder_order[r[3]]))
    if len(set(codings)) != len(codings):
        raise AssertionError("duplicate coding rows")
    write_csv(out / "codings.csv", ["segment_id", "codebook", "code_id", "coder"],
              [dict(zip(("segment_id", "codebook", "code_id", "coder"), r)) for r in codings])

    stats = agreement_stats(segments, codings, codes)
    results = evaluate_facts(spec, segments, codings, participants)
    text, tally, not_repro = provenance_md(spec, results, stats, participants, seed)
    (out / "PROVENANCE.md").write_text(text, encoding="utf-8", newline="")
    return {"agreement": stats, "facts": {k: tuple(v) for k, v in tally.items()}, "not_reproduced": not_repro}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = ap.parse_args(argv)
    summary = generate(args.out, seed=args.seed)
    for book, s in summary["agreement"].items():
        g = s["segment_x_code"]
        print(f"{book}: {s['consensus_codings']} consensus codings on {s['segments']} segments; coders agree on "
              f"{g['both']}, disagree on {g['only1'] + g['only2']}; kappa (segment x code) {g['kappa']:.3f}")
    for conf, (ok, n) in sorted(summary["facts"].items()):
        print(f"{conf} coding facts reproduced: {ok}/{n}")
    if summary["not_reproduced"]:
        print("not reproduced:", ", ".join(summary["not_reproduced"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
