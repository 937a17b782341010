// name: attribute_names
// title: The participant attribute names of a study
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (a:Attribute) WHERE a.study_id = $study_id RETURN DISTINCT a.name AS name, a.type AS type ORDER BY name, type;
