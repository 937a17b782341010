// name: participant_model
// title: One participant's mental model
// description: Everything coded for one participant, grouped into pipeline elements, threats, defenses, perceptions and other codes (by the kind of the ontology concept each code maps to): source kind (interview or drawing), code, label, group, concept and how many codings carry it. Analysis codings only. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study of the participant ('' = the only study in the store)
// param: participant STRING = "" | participant id ('' = the study's first participant, in natural order: P1, P2, …, P10)
// order: category, source_kind, codebook, code_id
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(k:Code)-[:IN_GROUP]->(g:CodeGroup)
WHERE p.id = $participant AND p.study_id = $study_id AND c.analysis
OPTIONAL MATCH (k)-[:MAPS_TO]->(x:Concept)
WITH p, src, k, g, c, x,
     CASE x.kind WHEN 'pipeline_element' THEN '1 pipeline element' WHEN 'aml_threat' THEN '2 threat (AML)'
       WHEN 'security_threat' THEN '3 threat (security)' WHEN 'aml_defense' THEN '4 defense (AML)'
       WHEN 'security_defense' THEN '5 defense (security)' WHEN 'perception' THEN '6 perception'
       ELSE '7 other' END AS category
RETURN p.study_id AS study_id, p.id AS participant_id, category, src.kind AS source_kind, k.codebook AS codebook,
       k.id AS code_id, k.label AS label, g.label AS group_label, x.uid AS concept, count(c) AS codings
ORDER BY category, source_kind, codebook, code_id, concept, group_label;
