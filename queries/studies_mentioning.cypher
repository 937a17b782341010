// name: studies_mentioning
// title: Studies that mention a concept
// description: Which studies mention a given concept (a threat, defense, pipeline element or perception, by uid or preferred label), counting its narrower concepts too when include_narrower is true: per study, the codes mapped to it, and the analysis codings, segments and participants carrying those codes. Mappings count when their match type is in `matches`. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: concept STRING = "ModelStealing" | concept uid (e.g. ModelStealing) or preferred label (e.g. model stealing)
// param: include_narrower BOOLEAN = true | also count codes mapped to narrower concepts (skos:broader chains)
// param: matches STRING = "exact,close,broad" | comma-separated SKOS match types whose mappings count
// mode: read
MATCH (target:Concept)
WHERE target.uid = $concept OR target.label = $concept
MATCH (c:Concept)-[:BROADER*0..6]->(target)
WHERE $include_narrower OR c.uid = target.uid
MATCH (k:Code)-[m:MAPS_TO]->(c)
WHERE $matches CONTAINS m.match
MATCH (s:Study)
WHERE s.id = k.study_id
OPTIONAL MATCH (p:Participant)-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(seg:Segment)-[r:CODED_AS]->(k)
WHERE r.analysis = true
WITH s, target, collect(DISTINCT k.label) AS codes, collect(DISTINCT c.uid) AS via_concepts, count(r) AS codings,
     count(DISTINCT seg.uid) AS segments, count(DISTINCT p.uid) AS participants
RETURN s.id AS study_id, s.title AS title, target.uid AS concept, target.label AS concept_label,
       list_sort(codes) AS codes, list_sort(via_concepts) AS via_concepts, codings, segments, participants,
       s.provenance AS provenance
ORDER BY participants DESC, study_id;
