// name: study_segments
// title: A study's segments as the segments table
// internal: true
// param: study_id STRING = "" | study ('' = the only study in the store)
// mode: read
MATCH (src:Source)-[:HAS_SEGMENT]->(seg:Segment) WHERE seg.study_id = $study_id
RETURN seg.id AS segment_id, src.id AS source_id, seg.start_pos AS start, seg.end_pos AS `end`, seg.x AS x, seg.y AS y,
       seg.width AS width, seg.height AS height, seg.synthetic AS synthetic, seg.text AS text,
       seg.text_section AS text_section;
