// name: security_vs_aml_groups
// title: Security vs AML mental models, per participant group
// description: Participants grouped by one attribute (e.g. works_in_security, aml_knowledge, sec_knowledge): per group the number of participants, how many mention AML at all, and the mean number of distinct codes per participant mapped to AML threats, security threats, AML defenses and security defenses (MAPS_TO with match types in `matches`; participants without the attribute form the group '(missing)'). Analysis codings only. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// param: attribute STRING = "" | participant attribute that forms the groups ('' = works_in_security where the study has it, else its first attribute with two or more values)
// param: matches STRING = "exact,close,broad" | comma-separated SKOS match types whose mappings count
// order: study_id, attribute_value
// mode: read
MATCH (p:Participant)
WHERE $study_id = '*' OR p.study_id = $study_id
OPTIONAL MATCH (p)-[:HAS_ATTRIBUTE]->(a:Attribute)
WHERE a.name = $attribute
WITH p, coalesce(min(a.value), '(missing)') AS attribute_value
OPTIONAL MATCH (p)-[:HAS_SOURCE]->(:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(k:Code)-[m:MAPS_TO]->(x:Concept)
WITH p, attribute_value, c.analysis AND $matches CONTAINS m.match AS counted, x, k
WITH p, attribute_value, CASE WHEN counted THEN x.kind END AS kind, CASE WHEN counted THEN x.uid END AS concept,
     CASE WHEN counted THEN k.uid END AS code
WITH p, attribute_value,
     count(DISTINCT CASE WHEN kind = 'aml_threat' THEN code END) AS aml_threat_codes,
     count(DISTINCT CASE WHEN kind = 'security_threat' THEN code END) AS security_threat_codes,
     count(DISTINCT CASE WHEN kind = 'aml_defense' THEN code END) AS aml_defense_codes,
     count(DISTINCT CASE WHEN kind = 'security_defense' THEN code END) AS security_defense_codes,
     count(DISTINCT CASE WHEN kind IN ['aml_threat', 'aml_defense'] OR concept = 'MentioningAML' THEN code END) AS aml_mention_codes
// integer sums as integers on both stores, and means as one division (avg() rounds differently per store)
RETURN p.study_id AS study_id, $attribute AS attribute, attribute_value, count(p) AS participants,
       to_int64(sum(CASE WHEN aml_mention_codes > 0 THEN 1 ELSE 0 END)) AS mentioning_aml,
       to_double(sum(aml_threat_codes)) / count(p) AS mean_aml_threat_codes,
       to_double(sum(security_threat_codes)) / count(p) AS mean_security_threat_codes,
       to_double(sum(aml_defense_codes)) / count(p) AS mean_aml_defense_codes,
       to_double(sum(security_defense_codes)) / count(p) AS mean_security_defense_codes,
       to_int64(sum(aml_threat_codes)) AS aml_threat_codes, to_int64(sum(security_threat_codes)) AS security_threat_codes,
       to_int64(sum(aml_defense_codes)) AS aml_defense_codes, to_int64(sum(security_defense_codes)) AS security_defense_codes
ORDER BY study_id, attribute_value;
