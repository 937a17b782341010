// name: codes
// title: Every code with its group and parent
// description: One row per code of the study's codebooks: its id, label, group (or parent code), whether it can be applied, and its codebook. `parent_id` is the parent code if there is one, else the group. The table behind `mmkg export codes`.
// param: study_id STRING = "" | study whose codes to list ('' = the only study in the store, * = every study)
// order: study_id, codebook, code_id
// mode: read
MATCH (k:Code)-[:IN_GROUP]->(g:CodeGroup)
WHERE $study_id = '*' OR k.study_id = $study_id
OPTIONAL MATCH (k)-[:SUBCODE_OF]->(parent:Code)
RETURN k.study_id AS study_id, k.codebook AS codebook, k.id AS code_id, k.label AS label,
       k.preferred_label AS preferred_label, coalesce(parent.id, g.id) AS parent_id, parent.id AS parent_code_id, g.id AS group_id,
       g.label AS group_label, k.codable AS codable
ORDER BY study_id, codebook, code_id;
