// name: security_vs_aml
// title: Security vs AML mental models, per participant
// description: Per participant, how many distinct codes and codings map to AML threats, security threats, AML defenses and security defenses (through MAPS_TO, match types in `matches`), and whether the participant mentions AML at all (any code mapped to an AML threat or defense, or to the perception 'mentioning AML'). `attribute` adds one participant attribute for grouping (e.g. works_in_security, aml_knowledge). Analysis codings only. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// param: attribute STRING = "" | participant attribute shown as attribute_value ('' = works_in_security where the study has it, else its first attribute with two or more values)
// param: matches STRING = "exact,close,broad" | comma-separated SKOS match types whose mappings count
// order: study_id, participant_id
// mode: read
MATCH (p:Participant)
WHERE $study_id = '*' OR p.study_id = $study_id
OPTIONAL MATCH (p)-[:HAS_ATTRIBUTE]->(a:Attribute)
WHERE a.name = $attribute
WITH p, min(a.value) AS attribute_value
OPTIONAL MATCH (p)-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(g:Segment)-[c:CODED_AS]->(k:Code)-[m:MAPS_TO]->(x:Concept)
WITH p, attribute_value, c.analysis AND $matches CONTAINS m.match AS counted, x, k, g
WITH p, attribute_value, CASE WHEN counted THEN x.kind END AS kind, CASE WHEN counted THEN x.uid END AS concept,
     CASE WHEN counted THEN k.uid END AS code, CASE WHEN counted THEN g.uid + '|' + k.uid END AS coding
WITH p, attribute_value,
     count(DISTINCT CASE WHEN kind = 'aml_threat' THEN code END) AS aml_threat_codes,
     count(DISTINCT CASE WHEN kind = 'security_threat' THEN code END) AS security_threat_codes,
     count(DISTINCT CASE WHEN kind = 'aml_defense' THEN code END) AS aml_defense_codes,
     count(DISTINCT CASE WHEN kind = 'security_defense' THEN code END) AS security_defense_codes,
     count(DISTINCT CASE WHEN kind = 'aml_threat' THEN coding END) AS aml_threat_codings,
     count(DISTINCT CASE WHEN kind = 'security_threat' THEN coding END) AS security_threat_codings,
     count(DISTINCT CASE WHEN kind = 'aml_defense' THEN coding END) AS aml_defense_codings,
     count(DISTINCT CASE WHEN kind = 'security_defense' THEN coding END) AS security_defense_codings,
     count(DISTINCT CASE WHEN kind IN ['aml_threat', 'aml_defense'] OR concept = 'MentioningAML' THEN code END) AS aml_mention_codes
RETURN p.study_id AS study_id, p.id AS participant_id, $attribute AS attribute, attribute_value,
       aml_threat_codes, security_threat_codes, aml_defense_codes, security_defense_codes,
       aml_threat_codings, security_threat_codings, aml_defense_codings, security_defense_codings,
       aml_mention_codes > 0 AS mentions_aml
ORDER BY study_id, participant_id;
