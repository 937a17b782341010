// name: study_ids
// title: The ids of the studies in the graph
// internal: true
// mode: read
MATCH (s:Study) RETURN s.id AS id ORDER BY id;
