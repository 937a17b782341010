// name: threat_map
// title: Pipeline threat map: attacks, the pipeline steps they control and affect, who mentions them
// description: One row per threat of the ontology (AML attacks and security threats): the pipeline elements the attacker controls (CONTROLS) and where the attack takes effect (AFFECTS), as in the paper's Figure 1, with how many participants mention it and in how many codings (codes mapped with match types in `matches`; analysis codings). The counts come from every source by default (a participant who names an attack in an interview and a drawing counts once), or from sources of kind `source_kind` only: interview as the founding paper's text counts them ("membership inference ... mentioned by three participants" are interviews), drawing for the drawings. The column `counted_in` says which. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study whose participants are counted ('' = the only study in the store, * = every study)
// param: kind STRING = "" | aml_threat or security_threat ('' = both)
// param: source_kind STRING = "" | count codings of this source kind only: interview, drawing, other ('' = every source; the founding paper's Figure 1 counts interview)
// param: matches STRING = "exact,close,broad" | comma-separated SKOS match types whose mappings count
// mode: read
MATCH (t:Concept)
WHERE t.kind IN ['aml_threat', 'security_threat'] AND ($kind = '' OR t.kind = $kind)
OPTIONAL MATCH (t)-[:CONTROLS]->(controlled:Concept)
WITH t, collect(DISTINCT controlled.label) AS controls
WITH t, list_sort(controls) AS controls
OPTIONAL MATCH (t)-[:AFFECTS]->(affected:Concept)
WITH t, controls, collect(DISTINCT affected.label) AS affects
WITH t, controls, list_sort(affects) AS affects
OPTIONAL MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)-[:HAS_SEGMENT]->(:Segment)-[c:CODED_AS]->(k:Code)-[m:MAPS_TO]->(t)
WITH t, controls, affects, p, k, c,
     c.analysis AND ($study_id = '*' OR p.study_id = $study_id) AND ($source_kind = '' OR src.kind = $source_kind)
       AND $matches CONTAINS m.match AS counted
WITH t, controls, affects, count(DISTINCT CASE WHEN counted THEN p.uid END) AS participants,
     count(CASE WHEN counted THEN c.coder END) AS codings,
     collect(DISTINCT CASE WHEN counted THEN k.codebook + ':' + k.id END) AS codes
RETURN t.uid AS threat, t.label AS label, t.kind AS kind, controls, affects, participants, codings,
       list_sort(codes) AS codes,
       CASE WHEN $source_kind = '' THEN 'every source' ELSE $source_kind + ' sources' END AS counted_in
ORDER BY kind, participants DESC, threat;
