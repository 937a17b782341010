// name: concept_cooccurrence
// title: Concept co-occurrence within and across studies
// description: Pairs of ontology concepts that occur in the same unit, counted through the codes mapped to them (analysis codings only). unit = segment (one stored segment — unlike `cooccurrence`, this Cypher-only query neither joins segments at the same position nor counts overlapping selections: use `cooccurrence` for the QDA tools' overlap rule), source (one interview or drawing) or participant (anywhere in one participant's material). Per study by default; with pooled = true the units of every study are counted together (study_id '*'). n_a, n_b, n_ab = units carrying a, b, both; n_units = units carrying any mapped concept (a filter on matches or study changes it); jaccard = n_ab / (n_a + n_b - n_ab); lift = n_ab * n_units / (n_a * n_b). Mappings count when their match type is in `matches`. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "*" | only this study (* = every study, the default: these queries compare studies; '' = the only study in the store)
// param: unit STRING = "segment" | segment, source or participant
// param: min_count INTEGER = 1 | smallest n_ab reported
// param: pooled BOOLEAN = false | count the units of all selected studies together (study_id '*')
// param: matches STRING = "exact,close,broad" | comma-separated SKOS match types whose mappings count
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(seg:Segment)-[r:CODED_AS]->(k:Code)-[m:MAPS_TO]->(c:Concept)
// LadybugDB 0.22 miscounts a relationship property filtered beside an OR in the same WHERE: project first
WITH p, src, seg, k, c, r.analysis AS analysis, m.match AS match_type
WHERE analysis AND ($study_id = '*' OR k.study_id = $study_id) AND $matches CONTAINS match_type
WITH CASE WHEN $pooled THEN '*' ELSE k.study_id END AS study_id,
     CASE WHEN $unit = 'participant' THEN p.uid WHEN $unit = 'source' THEN src.uid ELSE seg.uid END AS unit,
     collect(DISTINCT c.uid) AS concepts
WITH study_id, count(*) AS n_units, collect(concepts) AS unit_concepts
UNWIND unit_concepts AS concepts
UNWIND concepts AS a
UNWIND concepts AS b
WITH study_id, n_units, a, b, count(*) AS n_ab
WITH study_id, n_units, a, collect({b: b, n_ab: n_ab}) AS cells, max(CASE WHEN a = b THEN n_ab ELSE 0 END) AS n_a
UNWIND cells AS cell
WITH study_id, n_units, a, n_a, cell.b AS b, cell.n_ab AS n_ab
WITH study_id, n_units, b, collect({a: a, n_a: n_a, n_ab: n_ab}) AS cells,
     max(CASE WHEN a = b THEN n_ab ELSE 0 END) AS n_b
UNWIND cells AS cell
WITH study_id, n_units, cell.a AS a, b, cell.n_a AS n_a, n_b, cell.n_ab AS n_ab
WHERE a < b AND n_ab >= $min_count
MATCH (ca:Concept) WHERE ca.uid = a
MATCH (cb:Concept) WHERE cb.uid = b
RETURN study_id, $unit AS unit, a AS concept_a, ca.label AS label_a, ca.kind AS kind_a, b AS concept_b,
       cb.label AS label_b, cb.kind AS kind_b, n_a, n_b, n_ab, n_units,
       1.0 * n_ab / (n_a + n_b - n_ab) AS jaccard, 1.0 * n_ab * n_units / (n_a * n_b) AS lift
ORDER BY study_id, n_ab DESC, concept_a, concept_b;
