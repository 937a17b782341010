// name: selections
// title: Segments with their source and position
// description: One row per segment of the selected studies: its source, and where it sits — a text or media range (start, end: character offsets of a text, milliseconds of audio or video) or a picture or PDF region (x, y, width, height); both empty for a coding of a whole source. The co-occurrence and agreement steps build selections and overlapping passages from this table (mmkg.overlap). The founding study's positions are synthetic. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// order: source, segment
// mode: read
MATCH (src:Source)-[:HAS_SEGMENT]->(g:Segment)
WITH src, g, g.study_id AS study
WHERE $study_id = '*' OR study = $study_id
RETURN src.uid AS source, g.uid AS segment, g.start_pos AS start, g.end_pos AS `end`, g.x AS x, g.y AS y,
       g.width AS width, g.height AS height
ORDER BY source, segment;
