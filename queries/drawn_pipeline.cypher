// name: drawn_pipeline
// title: Pipeline elements each participant drew
// description: One row per (participant, pipeline element of the ontology) found in the participant's sources of one kind (drawings by default): the codes that name the element and how many codings (segments) carry them. Codes count through MAPS_TO with match types in `matches`; analysis codings only. Pivot on element to get the participant × element table. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// param: source_kind STRING = "drawing" | drawing, interview or other ('' = every source)
// param: matches STRING = "exact,close,broad" | comma-separated SKOS match types whose mappings count
// order: study_id, participant_id
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(k:Code)-[m:MAPS_TO]->(e:Concept)
// LadybugDB 0.22 misapplies a relationship property filtered beside an OR in the same WHERE (after a rebuild
// it counted a 'related' mapping): project the properties first
WITH p, src, k, e, c, c.analysis AS analysis, m.match AS match_type
WHERE analysis AND e.kind = 'pipeline_element' AND ($study_id = '*' OR p.study_id = $study_id)
  AND ($source_kind = '' OR src.kind = $source_kind) AND $matches CONTAINS match_type
WITH p, e, collect(DISTINCT k.codebook + ':' + k.id) AS codes, count(c) AS codings
RETURN p.study_id AS study_id, p.id AS participant_id, e.uid AS element, e.label AS element_label,
       list_sort(codes) AS codes, codings
ORDER BY study_id, participant_id, element;
