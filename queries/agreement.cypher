// name: agreement
// title: Intercoder agreement per codebook and per code
// description: Agreement between coders on passage × code presence: for a codebook, the passages of the compared coders' selections in its sources (selections of one source that overlap, taken together — so coders who mark slightly different boundaries of the same words meet in one passage; touching ranges do not overlap) crossed with every code of the codebook; a unit is 1 for a coder who applied the code to a selection in the passage. Per codebook and per code: both, only_a, only_b, neither, percent agreement ((both + neither) / units), agreement on coded units (both / (both + only_a + only_b)), Cohen's κ (coders a and b) and Krippendorff's α (nominal, every compared coder). By default every coder except the study's analysis (consensus) coder is compared. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// analysis: agreement
// param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
// option: codebook STRING = "" | only this codebook ('' = all)
// option: coder_a STRING = "" | first coder for Cohen's κ ('' = first compared coder)
// option: coder_b STRING = "" | second coder for Cohen's κ ('' = second compared coder)
// option: coders STRING = "" | comma-separated coders compared by α ('' = all but the analysis coder)
// option: level STRING = "all" | codebook, code or all
// mode: read
MATCH (g:Segment)-[c:CODED_AS]->(k:Code)
WHERE $study_id = '*' OR g.study_id = $study_id
RETURN g.study_id AS study_id, g.uid AS segment, k.codebook AS codebook, k.uid AS code_uid, c.coder AS coder;
