// name: concepts
// title: Ontology concepts with their broader concepts, external ids and mapped codes
// description: One row per concept of the mmkg ontology (threats, defenses, pipeline elements, perceptions): kind, label, broader concepts, external identifiers (MITRE ATLAS, NIST AI 100-2, OWASP ML Top 10) and the study codes mapped to it (study/codebook:id with the SKOS match type).
// param: kind STRING = "" | only this kind: pipeline_element, aml_threat, security_threat, aml_defense, security_defense, perception ('' = all)
// param: study_id STRING = "" | list codes of this study ('' = the only study in the store, * = every study)
// mode: read
MATCH (x:Concept)
WHERE $kind = '' OR x.kind = $kind
OPTIONAL MATCH (x)-[:BROADER]->(up:Concept)
WITH x, collect(DISTINCT up.uid) AS broader
WITH x, list_sort(broader) AS broader
OPTIONAL MATCH (x)-[:EXTERNAL_MATCH]->(e:ExternalId)
WITH x, broader, collect(DISTINCT CASE WHEN e IS NULL THEN NULL ELSE e.scheme + ' ' + e.external_id END) AS external_ids
WITH x, broader, list_sort(external_ids) AS external_ids
OPTIONAL MATCH (k:Code)-[m:MAPS_TO]->(x)
WHERE $study_id = '*' OR k.study_id = $study_id
WITH x, broader, external_ids,
     collect(CASE WHEN k IS NULL THEN NULL ELSE k.study_id + '/' + k.codebook + ':' + k.id + ' (' + m.match + ')' END) AS codes
RETURN x.uid AS concept, x.label AS label, x.kind AS kind, broader, external_ids, list_sort(codes) AS codes
ORDER BY kind, concept;
