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
   unconstrained codes (participant sets never change in this step; 'singleton' codes stay at one coding).
3. Passages: designed segments are placed; the remaining code applications are packed 1-3 per passage,
   never putting an AML attack (I:A.*) and a security threat (I:C.*) in one passage, so every such
   co-occurrence is a designed one (the paper counts them).
4. coder1/coder2 per (passage, code): a seeded sample of the consensus pairs is given to one coder only
   (accepted in the consensus discussion); the remaining agreed pairs are coded by both; further single-coder
   pairs that the consensus rejected are added until the paper's agreement figures hold (989 both / 136 one,
   interviews; 233 both / 42 one = 275 in total, drawings).
5. Layout (`place`, `render`): passages get synthetic positions that never overlap one another (some interview
   passages touch: end == start); within a passage the codes sit on one selection, on one selection per code
   over the same range, or on nested / partly overlapping selections around a shared core; each coder codes
   on the consensus selections or on boundaries of their own, a little wider or narrower.  Every two
   selections of a passage overlap, so the segment unit of `cooccurrence` (overlapping selections) counts
   each passage once.
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
    """Everything in founding_spec/; `paper-facts` is the transcription with fact_revisions.json applied."""
    spec = {}
    for name in ("codebooks", "participants", "plan", "designed_segments", "paper-facts", "fact_notes",
                 "fact_revisions"):
        spec[name] = json.loads((spec_dir / f"{name}.json").read_text(encoding="utf-8"))
    spec["paper-facts"] = apply_revisions(spec["paper-facts"], spec["fact_revisions"])
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
             and not plan[book][k[1]].get("designed_only") and not plan[book][k[1]].get("global")
             and not plan[book][k[1]].get("singleton")),
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

def build_passages(spec, counts, rng):
    """The consensus passages (one place in a source where the codes of one designed or packed segment sit),
    in source order: dicts with id, p, book, codes, text, section, whole."""
    plan = spec["plan"]
    designed = spec["designed_segments"]
    passages = []
    for p in plan["participants"]:
        # ---- interview
        cnt = counts["interview"]
        remaining = {c: n for (q, c), n in cnt.items() if q == p}
        segs = _take_designed(designed["interview"], p, remaining, "interview")
        apps = [c for c in sorted(remaining, key=code_key) for _ in range(remaining[c])]
        rng.shuffle(apps)
        segs += [{"codes": s, "text": "", "section": ""} for s in pack(apps, rng, _interview_conflict)]
        rng.shuffle(segs)
        for i, s in enumerate(segs, 1):
            passages.append({"id": f"{pid(p)}-I{i:03d}", "p": p, "book": "interview", "whole": False,
                             "codes": sorted(s["codes"], key=code_key), "text": s["text"], "section": s["section"]})
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
        for i, s in enumerate([whole] + rest, 1):
            passages.append({"id": f"{pid(p)}-D{i:03d}", "p": p, "book": "drawing", "whole": bool(s.get("whole")),
                             "codes": sorted(s["codes"], key=code_key), "text": s["text"], "section": s["section"]})
    return passages


# ---------------------------------------------------------------------------------------------- layout
# How a passage's codes sit on selections, as QDA tools write them: one selection carrying every code
# (ATLAS.ti), one selection per code over the same words (NVivo), or one selection per code, nested in or
# partly overlapping one another around the words they share.
STYLES = ("one selection", "one per code", "nested")
GAP_TOUCHING = 0.12  # share of interview passages that end where the next one starts (touching, not overlapping)
CELL_MARGIN = 24  # pixels between a drawing passage and its grid cell's edge
CODER_SHIFT = 40  # at most this many characters (pixels: half the margin) beyond a passage's edge


def place(passages, rng) -> None:
    """Give every passage an extent and a core (the words or area all its selections share), and a style."""
    by_source = defaultdict(list)
    for q in passages:
        by_source[(q["p"], q["book"])].append(q)
    for (_p, book), items in sorted(by_source.items()):
        if book == "interview":
            cursor = rng.randint(0, 400)
            gap_before = 10 ** 9
            for q in items:
                length = len(q["text"]) if q["text"] else rng.randint(60, 900)
                gap = 0 if rng.random() < GAP_TOUCHING else rng.randint(50, 2500)
                inset = (rng.randint(0, length // 4), rng.randint(0, length // 4))
                q.update(extent=(cursor, cursor + length), core=(cursor + inset[0], cursor + length - inset[1]),
                         slack=(min(gap_before // 3, CODER_SHIFT), min(gap // 3, CODER_SHIFT)))
                gap_before = gap
                cursor += length + gap
        else:
            cells = [q for q in items if not q["whole"]]
            columns = 5
            rows = max(3, -(-len(cells) // columns))
            cell_w, cell_h = CANVAS[0] // columns, CANVAS[1] // rows
            for i, q in enumerate(cells):
                cx, cy = (i % columns) * cell_w, (i // columns) * cell_h
                w = rng.randint(cell_w // 2, cell_w - 2 * CELL_MARGIN)
                h = rng.randint(cell_h // 2, cell_h - 2 * CELL_MARGIN)
                x = cx + rng.randint(CELL_MARGIN, cell_w - CELL_MARGIN - w)
                y = cy + rng.randint(CELL_MARGIN, cell_h - CELL_MARGIN - h)
                ix, iy = rng.randint(0, w // 4), rng.randint(0, h // 4)
                q.update(extent=(x, y, w, h), core=(x + ix, y + iy, w - ix - rng.randint(0, w // 4),
                                                     h - iy - rng.randint(0, h // 4)),
                         slack=(CELL_MARGIN // 2, CELL_MARGIN // 2))
        for q in items:
            if q["whole"]:
                q["style"] = "whole"
            elif len(q["codes"]) == 1:
                q["style"] = "one selection"
            elif q["text"]:  # a quote is selected as published: whole words only
                q["style"] = rng.choices(STYLES[:2], weights=(60, 40))[0]
            else:
                q["style"] = rng.choices(STYLES, weights=(45, 30, 25))[0]


def _between(q, rng, outer_slack: bool) -> tuple:
    """A selection inside the passage (around its core); reaching up to the slack beyond its edges if asked."""
    if q["book"] == "interview":
        (s, e), (cs, ce) = q["extent"], q["core"]
        left, right = q["slack"] if outer_slack else (0, 0)
        return rng.randint(max(0, s - left), cs), rng.randint(ce, e + right)
    (x, y, w, h), (cx, cy, cw, ch) = q["extent"], q["core"]
    m = q["slack"][0] if outer_slack else 0
    x0, y0 = rng.randint(x - m, cx), rng.randint(y - m, cy)
    x1, y1 = rng.randint(cx + cw, x + w + m), rng.randint(cy + ch, y + h + m)
    return x0, y0, x1 - x0, y1 - y0


def _segment_row(sid, q, geometry, text="") -> dict:
    row = {"segment_id": sid, "source_id": f"{pid(q['p'])}-{q['book']}", "start": "", "end": "", "x": "", "y": "",
           "width": "", "height": "", "synthetic": "true", "text": text, "text_section": q["section"] if text else ""}
    if geometry is not None and q["book"] == "interview":
        row["start"], row["end"] = geometry
    elif geometry is not None:
        row["x"], row["y"], row["width"], row["height"] = geometry
    return row


def render(passages, rows, rng):
    """Selections (segments.csv rows) and codings (segment, codebook, code, coder) of every passage: the
    consensus in the passage's style; each coder either on the consensus selections or on selections of
    their own, a little wider or narrower (never reaching a neighbouring passage)."""
    by_passage = defaultdict(lambda: defaultdict(list))
    for passage_id, _book, code, coder in rows:
        by_passage[passage_id][coder].append(code)
    segments, codings = [], []
    for q in passages:
        coded = by_passage[q["id"]]
        letters = iter("abcdefghijklmnopqrstuvwxyz")
        consensus_at = {}  # code -> consensus segment id
        if q["style"] in ("whole", "one selection"):
            segments.append(_segment_row(q["id"], q, None if q["whole"] else q["extent"], q["text"]))
            consensus_at = {c: q["id"] for c in q["codes"]}
        else:
            for c in q["codes"]:
                sid = f"{q['id']}{next(letters)}"
                geometry = q["extent"] if q["style"] == "one per code" else _between(q, rng, outer_slack=False)
                segments.append(_segment_row(sid, q, geometry, q["text"] if q["style"] == "one per code" else ""))
                consensus_at[c] = sid
        codings += [(consensus_at[c], q["book"], c, CONSENSUS) for c in coded[CONSENSUS]]
        for k, coder in enumerate(CODERS, 1):
            codes = coded[coder]
            if not codes:
                continue
            if q["whole"]:
                codings += [(q["id"], q["book"], c, coder) for c in codes]
                continue
            own = f"{q['id']}-c{k}"
            if rng.random() < 0.55:  # on the consensus selections; another code on one of its own
                extra = [c for c in codes if c not in consensus_at]
                if extra and q["style"] == "one selection":
                    codings += [(q["id"], q["book"], c, coder) for c in extra]
                elif extra:
                    segments.append(_segment_row(own, q, q["extent"]))
                    codings += [(own, q["book"], c, coder) for c in extra]
                codings += [(consensus_at[c], q["book"], c, coder) for c in codes if c in consensus_at]
            elif rng.random() < 0.75:  # one selection of their own for all their codes
                segments.append(_segment_row(own, q, _between(q, rng, outer_slack=True)))
                codings += [(own, q["book"], c, coder) for c in codes]
            else:  # their own boundaries, one selection per code (as NVivo writes them)
                geometry = _between(q, rng, outer_slack=True)
                for c, letter in zip(codes, "abcdefghijklmnopqrstuvwxyz"):
                    segments.append(_segment_row(f"{own}{letter}", q, geometry))
                    codings.append((f"{own}{letter}", q["book"], c, coder))
    return segments, codings


# ---------------------------------------------------------------------------------------------- coders
def derive_coders(spec, passages, rng):
    """Split consensus pairs (passage, code) into agreed / single-coder-accepted and add single-coder-rejected
    pairs; returns (passage_id, codebook, code, coder) rows."""
    plan = spec["plan"]
    participant_of = {q["id"]: q["p"] for q in passages}
    book_of = {q["id"]: q["book"] for q in passages}
    whole = {q["id"] for q in passages if q["whole"]}
    rows = []
    for book in ("interview", "drawing"):
        tgt = plan["targets"][book]
        pairs = sorted(((q["id"], c) for q in passages if q["book"] == book for c in q["codes"]),
                       key=lambda x: (x[0], code_key(x[1])))
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
            p_codes[participant_of[s]].add(c)
        candidates = []
        for s in sorted(by_seg):
            if book_of[s] != book or s in whole:
                continue
            for c in sorted(p_codes[participant_of[s]], key=code_key):
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


def agreement_stats(passages, rows, codes):
    """Agreement on passage × code presence (every passage is coded by a coder), and on participant × code."""
    participant_of = {q["id"]: q["p"] for q in passages}
    out = {}
    for book in ("interview", "drawing"):
        n_passages = sum(1 for q in passages if q["book"] == book)
        n_codes = len(codes[book])
        sets = {k: {(s, c) for (s, b, c, k2) in rows if b == book and k2 == k} for k in CODERS}
        passage_level = cohen_kappa_presence(n_passages * n_codes, sets[CODERS[0]], sets[CODERS[1]])
        psets = {k: {(participant_of[s], c) for (s, c) in v} for k, v in sets.items()}
        n_p = len(set(participant_of.values()))
        part_level = cohen_kappa_presence(n_p * n_codes, psets[CODERS[0]], psets[CODERS[1]])
        out[book] = {"passages": n_passages, "codes": n_codes, "passage_x_code": passage_level,
                     "participant_x_code": part_level,
                     "consensus_codings": sum(1 for (s, b, c, k) in rows if b == book and k == CONSENSUS)}
    return out


# ------------------------------------------------------------------------------------------------ facts
def apply_revisions(facts: list[dict], revisions: dict) -> list[dict]:
    """The transcription with the project's revisions applied and its additions appended (fact_revisions.json);
    a revised or added fact carries `revision`: why."""
    out = []
    for fact in facts:
        change = revisions["revised"].get(fact["id"])
        out.append({**fact, **change["set"], "revision": change["why"]} if change else dict(fact))
    known = {f["id"] for f in out}
    for fact in revisions["added"]:
        if fact["id"] in known:
            raise ValueError(f"fact_revisions.json adds {fact['id']}, which the transcription already has")
        out.append({**{k: v for k, v in fact.items() if k != "why"}, "revision": fact["why"]})
    unknown = set(revisions["revised"]) - known
    if unknown:
        raise ValueError(f"fact_revisions.json revises facts the transcription lacks: {', '.join(sorted(unknown))}")
    return out


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


def holds(f, codes: frozenset, passages: list) -> bool:
    """Does a participant with these codes (and these passages' code sets) hold the fact?  Every listed code
    is required except under code_logic 'any'; with scope 'segment' the codes must share one passage, and a
    negated code must never share a passage with them."""
    neg = set(f["negated_codes"])
    pos = [c for c in f["codes"] if c not in neg]
    if f.get("scope") == "segment":
        carrying = [s for s in passages if set(pos) <= s]
        return bool(carrying) and not any(neg & s for s in carrying)
    if neg & codes:
        return False
    return any(c in codes for c in pos) if f["code_logic"] == "any" else all(c in codes for c in pos)


def evaluate_fact(f, passage_codes, part_codes, part_passages, people, passage_text):
    """Generator-side evaluation of one coding fact (the test suite re-implements this independently).

    passage_codes: {passage_id: set of 'I:A.3'-style codes} (consensus); part_codes: {participant: codes};
    part_passages: {participant: [code sets of its passages]}; passage_text: {passage_id: quoted text}.
    Returns (value, ok) or None when the fact carries no codes / no comparator.
    """
    kind, codes, neg = f["kind"], f["codes"], set(f["negated_codes"])
    pos = [c for c in codes if c not in neg]
    if not codes or f["comparator"] is None or f.get("answerable") is False:
        return None
    if kind == "quote":
        found = [s for q, s in passage_codes.items() if f["quote_text"] in passage_text.get(q, "")]
        v = sum(1 for s in found if set(pos) <= s and not (neg & s))
        return v, compare(v, f["comparator"], f["value"]) and len(found) >= 1
    if kind == "code_count_codings":
        vals = [sum(1 for s in passage_codes.values() if c in s) for c in codes]
        return (vals if len(vals) > 1 else vals[0]), all(compare(v, f["comparator"], f["value"]) for v in vals)
    if kind == "cooccurrence" and f["unit"] == "codings":
        v = sum(1 for s in passage_codes.values() if all(c in s for c in pos) and not (neg & s))
        return v, compare(v, f["comparator"], f["value"])
    holders = {p for p in people if holds(f, part_codes.get(p, frozenset()), part_passages.get(p, []))}
    listed = {pid(p) for p in f["participants"]}
    if kind in ("code_count_participants", "cooccurrence"):
        v = len(holders)
        ok = compare(v, f["comparator"], f["value"]) and listed <= holders
    elif kind == "participants_list":
        v = len(listed & holders)
        ok = compare(v, f["comparator"], f["value"])
    else:
        return None
    if f["participants_complete"]:
        ok = ok and holders == listed
    return v, ok


CODING_KINDS = ("code_count_codings", "code_count_participants", "cooccurrence", "participants_list", "quote")


def evaluate_facts(spec, passages, rows, participants):
    passage_codes = defaultdict(set)
    part_codes = defaultdict(set)
    participant_of = {q["id"]: pid(q["p"]) for q in passages}
    passage_text = {q["id"]: q["text"] for q in passages if q["text"]}
    for s, b, c, k in rows:
        if k == CONSENSUS:
            code = f"{BOOK_PREFIX[b]}:{c}"
            passage_codes[s].add(code)
            part_codes[participant_of[s]].add(code)
    part_passages = defaultdict(list)
    for s, codes in passage_codes.items():
        part_passages[participant_of[s]].append(codes)
    part_codes = {p: frozenset(v) for p, v in part_codes.items()}
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
        elif f["id"] in ops and "left" in ops[f["id"]]:
            o = ops[f["id"]]
            worst = max(sum(1 for s in passage_codes.values() if a in s and b in s)
                        for a in o["left"] for b in o["right"])
            r = (worst, worst <= o["max_segments"])
        else:
            r = evaluate_fact(f, passage_codes, part_codes, part_passages, people, passage_text)
        results.append((f, r))
    return results


# ------------------------------------------------------------------------------------------ provenance
def _fmt_val(v):
    if isinstance(v, list):
        return "/".join(fmt_num(x) for x in v)
    return fmt_num(v)


def _revisions_md(spec) -> str:
    """The fact_revisions.json entries as a list: id, section, what changed, why."""
    lines = []
    for fid, change in spec["fact_revisions"]["revised"].items():
        fields = ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in change["set"].items())
        lines.append(f"- `{fid}` (revised: {fields}): {change['why']}")
    for fact in spec["fact_revisions"]["added"]:
        lines.append(f"- `{fact['id']}` ({fact['section']}, added): {fact['why']} {fact['note']}")
    return "\n".join(lines)


def provenance_md(spec, results, stats, layout, seed):
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
    kl = ["| codebook | passages | codes | units | both | coder1 only | coder2 only | percent agreement on coded pairs "
          "| Cohen's κ (passage × code) | Cohen's κ (participant × code) | paper κ |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    paper_k = {"interview": "0.71", "drawing": "0.85"}
    for book in ("interview", "drawing"):
        s = stats[book]
        g, pl = s["passage_x_code"], s["participant_x_code"]
        kl.append(f"| {book} | {s['passages']} | {s['codes']} | {g['units']} | {g['both']} | {g['only1']} | "
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
        "{{INTERVIEW_PASSAGES}}": str(stats["interview"]["passages"]),
        "{{DRAWING_PASSAGES}}": str(stats["drawing"]["passages"]),
        "{{INTERVIEW_SEGMENTS}}": str(layout["interview"]),
        "{{DRAWING_SEGMENTS}}": str(layout["drawing"]),
        "{{STYLE_COUNTS}}": layout["styles"],
        "{{REVISIONS}}": _revisions_md(spec),
        "{{INTERVIEW_KAPPA}}": f"{stats['interview']['passage_x_code']['kappa']:.3f}",
        "{{DRAWING_KAPPA}}": f"{stats['drawing']['passage_x_code']['kappa']:.3f}",
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
    passages = build_passages(spec, counts, rng)
    place(passages, rng)
    rows = derive_coders(spec, passages, rng)
    segments, codings = render(passages, rows, rng)

    def seg_key(sid):
        p, rest = sid.split("-", 1)
        return (int(p[1:]), rest)

    segments.sort(key=lambda s: seg_key(s["segment_id"]))
    write_csv(out / "segments.csv", ["segment_id", "source_id", "start", "end", "x", "y", "width", "height",
                                     "synthetic", "text", "text_section"], segments)
    coder_order = {CONSENSUS: 0, CODERS[0]: 1, CODERS[1]: 2}
    codings.sort(key=lambda r: (seg_key(r[0]), r[1], code_key(r[2]), coder_order[r[3]]))
    if len(set(codings)) != len(codings):
        raise AssertionError("duplicate coding rows")
    if len({s["segment_id"] for s in segments}) != len(segments):
        raise AssertionError("duplicate segment ids")
    write_csv(out / "codings.csv", ["segment_id", "codebook", "code_id", "coder"],
              [dict(zip(("segment_id", "codebook", "code_id", "coder"), r)) for r in codings])

    stats = agreement_stats(passages, rows, codes)
    results = evaluate_facts(spec, passages, rows, participants)
    styles = defaultdict(int)
    for q in passages:
        styles[q["style"]] += 1
    book_of = {f"{pid(q['p'])}-{q['book']}": q["book"] for q in passages}
    layout = {book: sum(1 for s in segments if book_of[s["source_id"]] == book) for book in ("interview", "drawing")}
    layout["styles"] = ", ".join(f"{styles[k]} {k}" for k in STYLES + ("whole",))
    text, tally, not_repro = provenance_md(spec, results, stats, layout, seed)
    (out / "PROVENANCE.md").write_text(text, encoding="utf-8", newline="")
    return {"agreement": stats, "facts": {k: tuple(v) for k, v in tally.items()}, "not_reproduced": not_repro}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = ap.parse_args(argv)
    summary = generate(args.out, seed=args.seed)
    for book, s in summary["agreement"].items():
        g = s["passage_x_code"]
        print(f"{book}: {s['consensus_codings']} consensus codings in {s['passages']} passages; coders agree on "
              f"{g['both']}, disagree on {g['only1'] + g['only2']}; kappa (passage x code) {g['kappa']:.3f}")
    for conf, (ok, n) in sorted(summary["facts"].items()):
        print(f"{conf} coding facts reproduced: {ok}/{n}")
    if summary["not_reproduced"]:
        print("not reproduced:", ", ".join(summary["not_reproduced"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
