// name: concept_cooccurrence
// title: Concept co-occurrence within and across studies
// description: Pairs of ontology concepts that occur in the same unit, counted exactly as `cooccurrence` counts code pairs (the same units, rule and metrics), with every coding of a code standing for each concept the code maps to (analysis codings only). Units — segment (the default): a passage of overlapping selections in one source, two concepts co-occurring when a selection carrying one and a selection carrying the other are the same or overlap; exact: one selection; source; participant. Per study by default; with pooled = true the units of every study are counted together (study_id '*'). n_a, n_b, n_ab = units carrying a, b, both; N (n_units) = the units of the codings whose codes map to a counted concept (a filter on matches or study changes it); the metrics are the registered ones (c_coefficient = Jaccard, lift, …). Mappings count when their match type is in `matches`. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// analysis: concept_cooccurrence
// param: study_id STRING = "*" | only this study (* = every study, the default: these queries compare studies; '' = the only study in the store)
// param: matches STRING = "exact,close,broad" | comma-separated SKOS match types whose mappings count
// option: unit STRING = "segment" | unit: {units}
// option: min_count INTEGER = 1 | smallest n_ab reported
// option: pooled BOOLEAN = false | count the units of all selected studies together (study_id '*')
// mode: read
MATCH (k:Code)-[m:MAPS_TO]->(c:Concept)
WITH k, c, m.match AS match_type
WHERE ($study_id = '*' OR k.study_id = $study_id) AND $matches CONTAINS match_type
RETURN k.uid AS code_uid, c.uid AS concept, c.label AS label, c.kind AS kind
ORDER BY code_uid, concept;
