// name: study_groups
// title: A study's code groups as the groups table
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (g:CodeGroup) WHERE g.study_id = $study_id
OPTIONAL MATCH (g)-[:SUBGROUP_OF]->(parent:CodeGroup)
RETURN g.codebook AS codebook, g.id AS group_id, g.label AS label, parent.id AS parent_group_id;
