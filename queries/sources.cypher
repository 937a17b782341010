// name: sources
// title: Sources with their participant and kind
// description: One row per source (interview, drawing or other) of the selected studies with its participant. The co-occurrence step uses it to group segments into sources and participants, and to tell which sources can carry a codebook's codes (those of a kind on which the codebook is applied). The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// order: study_id, participant_id, source_id
// mode: read
MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)
WHERE $study_id = '*' OR p.study_id = $study_id
RETURN p.study_id AS study_id, p.uid AS participant, p.id AS participant_id, src.uid AS source, src.id AS source_id,
       src.kind AS kind
ORDER BY study_id, participant_id, source_id;
